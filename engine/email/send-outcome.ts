/** What became of one scheduled send (send-step.ts): the job's result, and what the worker logs. */
export type SendOutcome =
  | { readonly state: 'sent'; readonly messageId: string }
  | { readonly state: 'skipped' | 'failed' | 'cancelled'; readonly reason: string }
  | { readonly state: 'deferred'; readonly until: Date; readonly reason: 'quiet_hours' | 'domain_rate_limit' }
  | { readonly state: 'not_due' | 'not_scheduled' | 'in_flight' };
