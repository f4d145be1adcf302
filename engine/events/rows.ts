import type { AcceptedEvent, EventType } from '../../schemas/segment';
import type { TraitValue } from '../db/types';
import type { Resolution } from '../identity/resolve';
import type { PropertiesPolicy } from '../privacy/properties-policy';
import { scrubText } from '../privacy/scrub-text';
import { pseudonymize } from '../vault/crypto';
import type { FieldWrite } from '../vault/fields';
import type { EventRow, ProfileUpsert } from './app-writes';
import { minimizeContext } from './minimize-context';

/**
 * What one batch writes, shaped from its events and their resolved profiles: encrypted fields for
 * the vault, profile upserts and event rows for schema `app`. Pure: no I/O.
 */

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
export const storedMessageId = (e: AcceptedEvent) => scrubText(e.messageId);

/**
 * What app.event_receipts keeps of a messageId: a keyed hash. The receipt must outlive the event
 * (a replay months later is still a duplicate) and cannot be tied to a person to be erased with
 * them, and a site may put an identifier in its messageIds; hashed, it reveals nothing.
 */
export const receiptMessageId = (pseudonymKey: Buffer, messageId: string) => pseudonymize(pseudonymKey, 'receipt', messageId);

export function piiWrites(policy: PropertiesPolicy, events: readonly AcceptedEvent[], resolution: Resolution): FieldWrite[] {
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

export function profileUpserts(policy: PropertiesPolicy, events: readonly AcceptedEvent[], resolution: Resolution): ProfileUpsert[] {
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

/** Event rows, each under the profile consent lets it be linked to (null: kept unlinked). */
export function eventRows(policy: PropertiesPolicy, events: readonly AcceptedEvent[], profileIds: ReadonlyArray<string | null>): EventRow[] {
  return events.map((e, i) => {
    const type = e.event.type as EventType;
    const name = eventName(type, e.event);
    return {
      profileId: profileIds[i] ?? null,
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

