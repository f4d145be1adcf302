import path from 'node:path';
import { unsentConfirmations } from '../engine/consent/confirmations';
import { sendConfirmationEmail } from '../engine/email/confirmation-email';
import { createDomainLimiter } from '../engine/email/domain-limits';
import { sendForgetConfirmation } from '../engine/email/forget-email';
import { createMailer } from '../engine/email/mailer';
import { createSender, overdueSends, type SendDeps } from '../engine/email/send-step';
import { relayAfterCommit } from '../engine/outbox/relay-after-commit';
import { JOB_CATALOG } from '../engine/queues/catalog';
import type { JobHandlers } from '../engine/queues/worker';
import { enqueueConfirmations } from '../engine/runtime/batch';
import type { Services } from '../engine/runtime/services';

const SWEEP_EVERY_MS = 60_000;

/**
 * The email worker: campaign sends at their time and double opt-in confirmations, through one
 * pooled transport per process. It also sweeps, every minute, for confirmations whose enqueue was
 * lost and overdue sends whose job is gone (a Redis loss), so PostgreSQL stays the record.
 */
export function emailHandlers(services: Services): JobHandlers<'email'> {
  const { config, log } = services;
  const mailer = createMailer({
    smtpUrl: config.email.smtpUrl,
    from: config.email.from,
    outboxDir: path.join(config.dataDir, 'outbox'),
    log: log.child({ component: 'mailer' }),
    poolSize: config.email.poolSize,
    dkim: config.email.dkim,
  });
  const sweep = async () => {
    try {
      await enqueueConfirmations(services, await unsentConfirmations(services.databases.db, SWEEP_EVERY_MS));
      for (const id of await overdueSends(services.databases.db, new Date())) {
        await services.queues.enqueue('email', 'send', { sendId: id }, { jobId: `send-${id}` });
      }
    } catch (err) {
      log.warn({ err }, 'email sweep failed; it runs again in a minute');
    }
  };
  const timer = setInterval(() => void sweep(), SWEEP_EVERY_MS);
  timer.unref();
  services.releasers.add('mailer', async () => {
    clearInterval(timer);
    await mailer.close();
  });
  const confirmationDeps = { config, keys: services.keys, databases: services.databases, catalog: services.rules.purposes, mailer };
  const rules = services.rules;
  // Per recipient domain, shared by every email worker through Redis (the global limit is BullMQ's).
  const domainLimiter = createDomainLimiter({
    redis: services.redis,
    prefix: config.queuePrefix,
    pseudonymKey: services.keys.pseudonym,
    limits: config.email.domainRateLimits ?? [],
    registry: services.metrics.registry,
  });
  // Getters: the rule set (and its templates) of the moment of each send, after any reload.
  const sendDeps: SendDeps = {
    config,
    keys: services.keys,
    databases: services.databases,
    mailer,
    domainLimiter,
    get compiled() {
      return rules.compiled;
    },
    get templates() {
      return rules.templates;
    },
    get traitNames() {
      return rules.ruleSet.traitNames;
    },
  };
  // The sends of the jobs running at once are claimed together, and their rows written together
  // (send-step.ts createSender); a batch is at most what the queue runs at once.
  const send = createSender(sendDeps, { maxBatch: JOB_CATALOG.email.concurrency });
  return {
    confirmation: async (payload, { log: jobLog }) => {
      const outcome = await sendConfirmationEmail(confirmationDeps, payload.confirmationId);
      jobLog.debug({ outcome }, 'confirmation email');
      return { outcome };
    },
    forget_confirmation: async (payload, { log: jobLog }) => {
      const outcome = await sendForgetConfirmation(confirmationDeps, payload.profileId, new Date(payload.expiresAt));
      jobLog.debug({ outcome }, 'forget-me confirmation email');
      return { outcome };
    },
    send: async (payload, { log: jobLog }) => {
      const outcome = await send(payload.sendId).catch((err: unknown) => {
        services.metrics.emailSends.inc({ outcome: 'retry' });
        throw err;
      });
      // not_due, not_scheduled, in_flight: nothing happened to the send, nothing to count.
      if (outcome.state === 'sent' || outcome.state === 'skipped' || outcome.state === 'failed' || outcome.state === 'cancelled' || outcome.state === 'deferred') {
        services.metrics.emailSends.inc({ outcome: outcome.state });
      }
      if (outcome.state === 'deferred') await relayAfterCommit({ ...services, log: jobLog }, 1);
      jobLog.debug({ outcome }, 'campaign send');
      return outcome;
    },
  };
}
