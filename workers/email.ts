import path from 'node:path';
import { unsentConfirmations } from '../engine/consent/confirmations';
import { sendConfirmationEmail } from '../engine/email/confirmation-email';
import { createMailer } from '../engine/email/mailer';
import type { JobHandlers } from '../engine/queues/worker';
import { enqueueConfirmations } from '../engine/runtime/batch';
import type { Services } from '../engine/runtime/services';

const SWEEP_EVERY_MS = 60_000;

/**
 * The email worker: for now, double opt-in confirmations. It also sweeps for confirmations committed
 * whose enqueue was lost (Redis down at the wrong moment), so PostgreSQL stays the record.
 */
export function emailHandlers(services: Services): JobHandlers<'email'> {
  const { config, log } = services;
  const mailer = createMailer({
    smtpUrl: config.email.smtpUrl,
    from: config.email.from,
    outboxDir: path.join(config.dataDir, 'outbox'),
    log: log.child({ component: 'mailer' }),
  });
  const sweep = async () => {
    try {
      const ids = await unsentConfirmations(services.databases.db, SWEEP_EVERY_MS);
      await enqueueConfirmations(services, ids);
    } catch (err) {
      log.warn({ err }, 'confirmation sweep failed; it runs again in a minute');
    }
  };
  const timer = setInterval(() => void sweep(), SWEEP_EVERY_MS);
  timer.unref();
  services.releasers.add('mailer', async () => {
    clearInterval(timer);
    await mailer.close();
  });
  const deps = { config, keys: services.keys, databases: services.databases, catalog: services.rules.purposes, mailer };
  return {
    confirmation: async (payload, { log: jobLog }) => {
      const outcome = await sendConfirmationEmail(deps, payload.confirmationId);
      jobLog.debug({ outcome }, 'confirmation email');
      return { outcome };
    },
  };
}
