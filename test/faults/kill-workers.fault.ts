import { killWorkersScenario } from './harness/kill-scenario';

/**
 * Scenario 1, as far as it passes today: the events and broadcasts workers are killed; the email
 * worker is not (killing it mid-send strands sends: test/faults/pending/kill-email-worker.fault.ts).
 */
killWorkersScenario('1-kill-workers', 'fault 1: kill -9 of events and broadcasts workers during ingest and a broadcast', ['events-1', 'events-2', 'broadcasts']);
