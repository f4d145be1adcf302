import { type Kysely, sql, type Transaction } from 'kysely';
import type { AcceptedEvent, EventType } from '../../schemas/segment';
import type { Keys } from '../config';
import type { Databases } from '../db/connect';
import type { Database, TraitValue, VaultDatabase, VaultDbOrTrx } from '../db/types';
import { eventIdentityKeys } from '../identity/keys';
import { type Resolution, ResolutionConflict, resolveProfiles } from '../identity/resolve';
import type { PropertiesPolicy } from '../privacy/properties-policy';
import { scrubText } from '../privacy/scrub-text';
import { type FieldWrite, writeFields } from '../vault/fields';
import { applyProfileMerges, claimReceipts, type EventRow, insertEvents, type ProfileUpsert, upsertProfiles } from './app-writes';
import { minimizeContext } from './minimize-context';
import type { EventPartitions } from './partitions';

export interface BatchDeps {
  readonly databases: Databases;
  readonly keys: Keys;
  readonly policy: PropertiesPolicy;
  readonly partitions: EventPartitions;
}

export interface BatchOutcome {
  readonly stored: number;
  readonly duplicates: number;
  /** Events PostgreSQL refused, set aside in app.event_rejections so the rest could be stored. */
  readonly rejected: number;
}

const MAX_CONFLICT_RETRIES = 5;
// SQLSTATE 40P01 deadlock_detected, 40001 serialization_failure: the transaction was rolled back whole.
const RETRYABLE_SQLSTATES = new Set(['40P01', '40001']);

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

function isRetryable(err: unknown): boolean {
  if (err instanceof ResolutionConflict) return true;
  const code = sqlState(err);
  return code !== undefined && RETRYABLE_SQLSTATES.has(code);
}

/**
 * A value PostgreSQL refuses (class 22 data exception, 23 integrity violation, 54 program limit):
 * retrying the same data can never succeed.
 */
function isDataError(err: unknown): boolean {
  const code = sqlState(err);
  return code !== undefined && /^(22|23|54)/.test(code);
}

const record = (value: unknown): Record<string, unknown> | undefined =>
  value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;

/** The traits an event carries: an identify's own, else those analytics.js copies into context. */
function traitsOf(event: Record<string, unknown>): Record<string, unknown> | undefined {
  return record(event.traits) ?? record(record(event.context)?.traits);
}

function eventName(type: EventType, event: Record<string, unknown>): string | null {
  const raw = type === 'track' ? event.event : type === 'page' || type === 'screen' ? event.name : undefined;
  return typeof raw === 'string' ? scrubText(raw).slice(0, 200) : null;
}

function eventProperties(policy: PropertiesPolicy, type: EventType, name: string | null, event: Record<string, unknown>): Record<string, unknown> {
  if (type === 'identify' || type === 'alias') return {}; // traits go to the profile and the vault
  if (type === 'group') return { groupId: scrubText(String(event.groupId)).slice(0, 200) };
  return policy.minimizeProperties(type, name ?? undefined, record(event.properties));
}

/**
 * The messageId as stored: it is the client's free text, so it is scrubbed like any other
 * (deterministically, so a replay still matches its receipt).
 */
const storedMessageId = (e: AcceptedEvent) => scrubText(e.messageId);
const receiptKey = (e: AcceptedEvent) => `${e.sourceId}\u0000${storedMessageId(e)}`;

/** Keeps the first of each (source, messageId) in the batch; later copies are duplicates. */
function firstOccurrences(events: readonly AcceptedEvent[]): AcceptedEvent[] {
  const seen = new Set<string>();
  return events.filter((e) => {
    const id = receiptKey(e);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/**
 * What the events worker does with one job: deduplicate, resolve identities, split PII into the
 * vault, minimize the rest and store it; set-based SQL, one transaction per batch (two when the vault
 * has its own database: the vault commits first, and everything it does is idempotent on retry).
 */
export async function processEventBatch(deps: BatchDeps, events: readonly AcceptedEvent[]): Promise<BatchOutcome> {
  await deps.partitions.ensure(events.map((e) => new Date(e.occurredAt)));
  try {
    return await processWithRetries(deps, events);
  } catch (err) {
    if (!isDataError(err)) throw err;
  }
  // Some event holds a value PostgreSQL refuses. Events of many people share a batch, so one bad
  // event must not fail the others: store them one by one and set aside the ones refused.
  let stored = 0;
  let duplicates = 0;
  let rejected = 0;
  for (const event of events) {
    try {
      const outcome = await processWithRetries(deps, [event]);
      stored += outcome.stored;
      duplicates += outcome.duplicates;
    } catch (err) {
      if (!isDataError(err)) throw err;
      await deps.databases.db
        .insertInto('app.event_rejections')
        .values({
          source_id: event.sourceId,
          message_id: scrubText(event.messageId),
          received_at: new Date(event.receivedAt),
          reason: `SQLSTATE ${sqlState(err)}`,
        })
        .execute();
      rejected++;
    }
  }
  return { stored, duplicates, rejected };
}

async function processWithRetries(deps: BatchDeps, events: readonly AcceptedEvent[]): Promise<BatchOutcome> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await processOnce(deps, events);
    } catch (err) {
      if (!isRetryable(err) || attempt >= MAX_CONFLICT_RETRIES) throw err;
    }
  }
}

async function processOnce(deps: BatchDeps, events: readonly AcceptedEvent[]): Promise<BatchOutcome> {
  const { db, vaultDb } = deps.databases;
  const sharedDatabase = (vaultDb as unknown) === (db as unknown);
  let mergesToMark: string[] = [];
  const outcome = await db.transaction().execute(async (app): Promise<BatchOutcome> => {
    const unique = firstOccurrences(events);
    const fresh = await claimReceipts(
      app,
      unique.map((e) => ({ sourceId: e.sourceId, messageId: storedMessageId(e), receivedAt: new Date(e.receivedAt) })),
    );
    const todo = unique.filter((e) => fresh.has(receiptKey(e)));
    if (todo.length === 0) return { stored: 0, duplicates: events.length, rejected: 0 };

    const vaultWork = async (vault: VaultDbOrTrx) => {
      const resolution = await resolveProfiles(
        vault,
        deps.keys.master,
        todo.map((e) => ({ ...eventIdentityKeys(deps.keys.pseudonym, e.event), sourceId: e.sourceId })),
      );
      await writeFields(vault, piiWrites(deps.policy, todo, resolution));
      // With a separate vault database the vault commits first and its locks go with it. Before
      // that, take the same profiles' locks on the app side, so a concurrent batch merging one of
      // them waits until this batch's app writes are committed (and then moves them too).
      if (!sharedDatabase) await lockProfiles(app, touchedProfiles(resolution));
      return resolution;
    };
    const resolution = sharedDatabase
      ? await vaultWork(app as unknown as Transaction<VaultDatabase>)
      : await (vaultDb as Kysely<VaultDatabase>).transaction().execute(vaultWork);

    await upsertProfiles(app, profileUpserts(deps.policy, todo, resolution));
    await applyProfileMerges(app, resolution.merges);
    await insertEvents(app, eventRows(deps.policy, todo, resolution));
    const merged = resolution.merges.map((m) => m.loser);
    if (sharedDatabase) await markMergesApplied(app as unknown as Transaction<VaultDatabase>, merged);
    else mergesToMark = merged;
    return { stored: todo.length, duplicates: events.length - todo.length, rejected: 0 };
  });
  // With a separate vault database, merges are marked applied only once the app side committed; a
  // crash in between leaves them to applyPendingMerges.
  if (mergesToMark.length > 0) await markMergesApplied(vaultDb, mergesToMark);
  return outcome;
}

function touchedProfiles(resolution: Resolution): string[] {
  const ids = new Set<string>();
  for (const id of resolution.profileIds) if (id) ids.add(id);
  for (const m of resolution.merges) ids.add(m.loser).add(m.winner);
  return [...ids];
}

/** Transaction-scoped advisory locks on profiles, in one order (the first 64 bits of the uuid). */
async function lockProfiles(app: Transaction<Database>, profileIds: readonly string[]): Promise<void> {
  if (profileIds.length === 0) return;
  const numbers = [...new Set(profileIds.map((id) => BigInt.asIntN(64, BigInt(`0x${id.replace(/-/g, '').slice(0, 16)}`)).toString()))].sort();
  await sql`select pg_advisory_xact_lock(n) from (select unnest(${numbers}::bigint[]) as n order by 1) as ordered`.execute(app);
}

/**
 * Merges the vault recorded but the app side never applied (a crash between the two commits, with a
 * separate vault database). Cheap when there are none: a partial index holds only pending rows.
 */
export async function applyPendingMerges(databases: Databases, olderThanMs = 60_000): Promise<number> {
  const pending = await databases.vaultDb
    .selectFrom('vault.profile_merges')
    .select(['loser_id', 'winner_id'])
    .where('applied_at', 'is', null)
    .where('merged_at', '<', new Date(Date.now() - olderThanMs))
    .orderBy('merged_at')
    .limit(500)
    .execute();
  if (pending.length === 0) return 0;
  await databases.db.transaction().execute(async (app) => {
    await lockProfiles(app, pending.flatMap((m) => [m.loser_id, m.winner_id]));
    await applyProfileMerges(app, pending.map((m) => ({ loser: m.loser_id, winner: m.winner_id })));
  });
  await markMergesApplied(databases.vaultDb, pending.map((m) => m.loser_id));
  return pending.length;
}

async function markMergesApplied(vault: VaultDbOrTrx, loserIds: readonly string[]): Promise<void> {
  if (loserIds.length === 0) return;
  await vault.updateTable('vault.profile_merges').set({ applied_at: new Date() }).where('loser_id', 'in', loserIds).execute();
}

function piiWrites(policy: PropertiesPolicy, events: readonly AcceptedEvent[], resolution: Resolution): FieldWrite[] {
  // The latest value of each field per profile wins; one write per (profile, field).
  const writes = new Map<string, FieldWrite>();
  events.forEach((e, i) => {
    const profileId = resolution.profileIds[i];
    const key = profileId ? resolution.subjectKeys.get(profileId) : undefined;
    if (!key) return;
    const { pii } = policy.splitTraits(traitsOf(e.event));
    const acquiredAt = new Date(e.occurredAt);
    for (const [field, value] of Object.entries(pii)) {
      const id = `${profileId}\u0000${field}`;
      const previous = writes.get(id);
      if (!previous || previous.acquiredAt <= acquiredAt) writes.set(id, { key, field, value, sourceId: e.sourceId, acquiredAt });
    }
  });
  return [...writes.values()];
}

function profileUpserts(policy: PropertiesPolicy, events: readonly AcceptedEvent[], resolution: Resolution): ProfileUpsert[] {
  const profiles = new Map<string, { sourceId: string; lastSeenAt: Date; traits: Record<string, TraitValue> }>();
  events.forEach((e, i) => {
    const profileId = resolution.profileIds[i];
    if (!profileId) return;
    const at = new Date(e.occurredAt);
    const entry = profiles.get(profileId) ?? { sourceId: e.sourceId, lastSeenAt: at, traits: {} };
    if (at > entry.lastSeenAt) entry.lastSeenAt = at;
    if (e.event.type === 'identify') {
      for (const [name, value] of Object.entries(policy.splitTraits(traitsOf(e.event)).traits)) {
        const previous = entry.traits[name];
        if (!previous || previous.at <= e.occurredAt) entry.traits[name] = { v: value, src: e.sourceId, at: e.occurredAt };
      }
    }
    profiles.set(profileId, entry);
  });
  return [...profiles].map(([id, p]) => ({ id, ...p }));
}

function eventRows(policy: PropertiesPolicy, events: readonly AcceptedEvent[], resolution: Resolution): EventRow[] {
  return events.map((e, i) => {
    const type = e.event.type as EventType;
    const name = eventName(type, e.event);
    return {
      profileId: resolution.profileIds[i] ?? null,
      sourceId: e.sourceId,
      messageId: storedMessageId(e),
      type,
      name,
      occurredAt: new Date(e.occurredAt),
      receivedAt: new Date(e.receivedAt),
      properties: eventProperties(policy, type, name, e.event),
      context: minimizeContext(e),
    };
  });
}

