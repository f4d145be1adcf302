import type { Job } from 'bullmq';
import { type QueueName, jobDefinition } from '../../queues/catalog';
import { SealingError, unseal } from '../../queues/sealing';

/** A job's payload as its handler reads it: unsealed if the catalog seals it; undefined if the seal does not open. */
export function openedJob(queue: QueueName, job: Job, sealingKey: Buffer): { data: unknown } | undefined {
  if (!jobDefinition(queue, job.name)?.sealed) return { data: job.data };
  try {
    return { data: unseal(sealingKey, `${queue}/${job.name}`, job.data) };
  } catch (err) {
    if (err instanceof SealingError) return undefined;
    throw err;
  }
}
