import type { AuditQuery } from '../../schemas/admin';
import type { Keys } from '../config';
import type { DbOrTrx } from '../db/types';
import { subjectTarget } from './targets';

/** One page of the audit log, newest first; `next` is the `before` of the following page. */
export async function readAuditLog(db: DbOrTrx, keys: Keys, query: AuditQuery) {
  let q = db.selectFrom('app.audit_log').selectAll().orderBy('seq', 'desc').limit(query.limit + 1);
  if (query.since) q = q.where('at', '>=', new Date(query.since));
  if (query.until) q = q.where('at', '<', new Date(query.until));
  if (query.actor) q = q.where('actor', '=', query.actor);
  if (query.action) q = q.where('action', '=', query.action);
  if (query.outcome) q = q.where('outcome', '=', query.outcome);
  if (query.profileId) q = q.where('target', '=', subjectTarget(keys, query.profileId));
  if (query.target) q = q.where('target', '=', query.target);
  if (query.before) q = q.where('seq', '<', query.before);
  const rows = await q.execute();
  const page = rows.slice(0, query.limit);
  return {
    entries: page.map((row) => ({
      seq: String(row.seq),
      at: row.at.toISOString(),
      actor: row.actor,
      action: row.action,
      target: row.target,
      outcome: row.outcome,
      reason: row.reason,
      detail: row.detail,
      hash: row.hash.toString('base64url'),
    })),
    next: rows.length > query.limit && page.length > 0 ? String(page[page.length - 1]!.seq) : null,
  };
}
