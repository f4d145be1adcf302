import { killWorkersScenario } from './harness/kill-scenario';

/**
 * Scenario 1 as the issue states it: the email worker is among the processes killed. Nothing is lost
 * (a stale claim is taken over by the minute sweep, STALE_CLAIM_MS after it was made), and no send
 * happens twice. An email can go out twice only as the same message (same Message-ID) when the
 * relay had accepted it and the kill came before its row said `sent`: SMTP has no idempotency, and
 * that window is the stated budget (docs/reliability.md, scenario 1 and 6c), checked message by
 * message against the kill times (harness/kill-scenario.ts, smtpWindowDuplicates).
 */
killWorkersScenario('1-kill-workers-with-email', 'fault 1: kill -9 of every worker, the email worker included', ['events-1', 'events-2', 'email', 'broadcasts']);
