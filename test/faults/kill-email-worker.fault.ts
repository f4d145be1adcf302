import { killWorkersScenario } from '../harness/kill-scenario';

/**
 * PENDING: FAILS TODAY, on duplicates only (docs/reliability.md, scenario 1 and "Defects found" 1).
 * Scenario 1 as the issue states it: the email worker is among the processes killed. Since the
 * stale-claim sweep (commit 2e56df4) nothing is lost any more: re-run 2026-11-29 (seed 92930, 17
 * kills, 2 of them of the email worker), 6,000 of 6,000 emails delivered, no send left `sending`,
 * recovery 109.9 s (a stale claim is taken over after STALE_CLAIM_MS, 2 min, by the minute sweep).
 * It fails on 4 emails delivered twice, each time with the same Message-ID: sends the relay had
 * accepted when their worker was killed, before their row said `sent`; the take-over sends them
 * again. That is SMTP's window (no idempotency), the budget scenario 6c states (at most one
 * duplicate per send in flight at a kill), not a lost claim; the test asks for 0 and so stays here
 * until the engine closes the window or the issue accepts the budget for this scenario.
 * Run: `npx jest -c jest.faults.config.js --testMatch='<rootDir>/test/faults/pending/*.fault.ts' -t 'email worker included'`.
 */
killWorkersScenario('1-kill-workers-with-email', 'fault 1 (pending): kill -9 of every worker, the email worker included', ['events-1', 'events-2', 'email', 'broadcasts']);
