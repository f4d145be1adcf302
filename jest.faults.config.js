/**
 * `npm run test:faults`: the fault-injection scenarios (issue 10, docs/reliability.md). Each starts
 * real engine processes, injects a fault and counts what was lost or duplicated. They run one file
 * at a time: several of them kill processes and time recoveries on a 2-core machine, and a second
 * scenario beside them would time the machine instead. Scenarios under test/faults/pending/ show
 * engine defects that are not fixed yet and are not part of this run.
 */
/**
 * FAULTS_SMOKE=1: the CI smoke, the quickest scenarios only (each a minute or less, no wait on
 * BullMQ's 30-60 s stall recovery, no PostgreSQL restart of a shared server): replay, Redis
 * restarted, and the SMTP relay's 421 / 550 / cut: 89 s on the loaded 2-core machine (docs/reliability.md).
 */
const SMOKE = ['replay', 'redis-restart', 'smtp'];
const smoke = ['1', 'true', 'yes'].includes(String(process.env.FAULTS_SMOKE ?? '').toLowerCase());
const swc = ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }];
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test/faults'],
  // `*.fault.ts`, not `*.test.ts`: `npm test` (jest.config.js, every *.test.ts under test/) must not
  // run them. Only the top level: test/faults/pending/ holds the failing tests of known defects.
  testMatch: smoke ? SMOKE.map((name) => `<rootDir>/test/faults/${name}.fault.ts`) : ['<rootDir>/test/faults/*.fault.ts'],
  transform: { '^.+\\.ts$': swc, '^.+\\.m?js$': swc },
  transformIgnorePatterns: ['/node_modules/(?!(cookie)/)'],
  globalSetup: '<rootDir>/test/faults/global-setup.ts',
  globalTeardown: '<rootDir>/test/faults/global-teardown.ts',
  testTimeout: 240000,
  maxWorkers: 1,
};
