import { randomUUID } from 'node:crypto';
import type { AcceptedEvent } from '../../schemas/segment';
import type { Capability } from '../../schemas/purposes-file';
import type { DbOrTrx } from '../db/types';
import { type ConsentState, decide } from '../consent/gate';
import { appendLedger, currentConsent, type LedgerEntry } from '../consent/ledger';
import type { PurposeCatalog } from '../consent/purposes';
import { storedMessageId } from './rows';

/** How long a double opt-in waits for the person's click before it lapses. */
export const CONFIRMATION_TTL_MS = 7 * 24 * 60 * 60 * 1000;

// What a browser privacy signal objects to: everything that builds a picture of the person.
const SIGNAL_OBJECTS_TO: readonly Capability[] = ['link_events_to_profile', 'build_segments', 'behavioural_triggers'];

export interface ConsentStepOptions {
  readonly catalog: PurposeCatalog;
  /** Whether `DNT: 1` counts like `Sec-GPC: 1` (HONOR_DNT). */
  readonly honorDnt: boolean;
}

export interface ConsentStepResult {
  /** The profile each event is stored under: null where the person's consent does not allow linking. */
  readonly linkedProfileIds: ReadonlyArray<string | null>;
  /** Double opt-in confirmations created, waiting for their email. */
  readonly confirmations: readonly string[];
  readonly unlinked: number;
  /** Each profile's consent after this batch's changes (the rules that follow use it, not a re-read). */
  readonly state: ReadonlyMap<string, ConsentState>;
}

export function carriesBrowserSignal(e: AcceptedEvent, honorDnt: boolean): boolean {
  return e.signals.gpc || (honorDnt && e.signals.dnt);
}

/**
 * The consent part of a batch, inside its transaction: the consent the events carry goes to the
 * ledger (grants waiting for double opt-in become confirmations); a browser privacy signal becomes an
 * objection where the person has not chosen yet (GDPR Art. 21(5): objection by automated means);
 * then each event is linked to its profile only if the consent committed now allows it.
 */
export async function applyBatchConsent(
  app: DbOrTrx,
  options: ConsentStepOptions,
  events: readonly AcceptedEvent[],
  profileIds: ReadonlyArray<string | null>,
): Promise<ConsentStepResult> {
  const { catalog } = options;
  const profiles = [...new Set(profileIds.filter((p): p is string => p !== null))];
  const before = await currentConsent(app, profiles);
  const decided = new Set<string>();
  for (const [profile, state] of before) for (const purpose of state.keys()) decided.add(`${profile}\u0000${purpose}`);

  const entries: LedgerEntry[] = [];
  const confirmations: Array<{ id: string; profileId: string; event: AcceptedEvent; purposes: string[] }> = [];
  const signalPurposes = [...new Set(SIGNAL_OBJECTS_TO.flatMap((c) => catalog.providing(c).map((p) => p.name)))];

  events.forEach((e, i) => {
    const profileId = profileIds[i];
    if (!profileId) return;
    const occurredAt = new Date(e.occurredAt);
    const common = {
      profileId,
      occurredAt,
      sourceId: e.sourceId,
      ipPrefix: e.ipPrefix,
      eventMessageId: storedMessageId(e),
    };
    const change = e.consent;
    if (change) {
      const notice = change.notice ? { id: change.notice.id, version: change.notice.version, hash: Buffer.from(change.notice.hash, 'hex') } : undefined;
      const base = { ...common, sourceKind: change.sourceKind, sourceRef: change.sourceRef, method: change.method, notice };
      if (change.method === 'double_opt_in' && change.grant.length > 0) {
        confirmations.push({ id: randomUUID(), profileId, event: e, purposes: [...change.grant] });
      } else {
        for (const purpose of change.grant) entries.push({ ...base, purpose, decision: 'granted' });
      }
      for (const purpose of change.withdraw) entries.push({ ...base, purpose, decision: 'withdrawn' });
      for (const purpose of [...change.grant, ...change.withdraw]) decided.add(`${profileId}\u0000${purpose}`);
    }
    if (carriesBrowserSignal(e, options.honorDnt)) {
      // An explicit choice the person made (in a banner, a form) stands; the signal speaks only where
      // they have not chosen, and is recorded once, not on every request.
      for (const purpose of signalPurposes) {
        const id = `${profileId}\u0000${purpose}`;
        if (decided.has(id)) continue;
        decided.add(id);
        entries.push({ ...common, purpose, decision: 'objected', sourceKind: 'browser_signal', method: 'browser_signal', sourceRef: e.signals.gpc ? 'Sec-GPC: 1' : 'DNT: 1' });
      }
    }
  });

  await appendLedger(app, entries);
  if (confirmations.length > 0) {
    await app
      .insertInto('app.consent_confirmations')
      .values(
        confirmations.map((c) => {
          const notice = c.event.consent?.notice;
          if (!notice) throw new Error('a double opt-in without a notice reached the events worker');
          const requestedAt = new Date(c.event.receivedAt);
          return {
            id: c.id,
            profile_id: c.profileId,
            purposes: c.purposes,
            notice_id: notice.id,
            notice_version: notice.version,
            notice_hash: Buffer.from(notice.hash, 'hex'),
            source_id: c.event.sourceId,
            source_ref: c.event.consent?.sourceRef ?? null,
            ip_prefix: c.event.ipPrefix ?? null,
            event_message_id: storedMessageId(c.event),
            requested_at: requestedAt,
            expires_at: new Date(requestedAt.getTime() + CONFIRMATION_TTL_MS),
            email_sent_at: null,
            confirmed_at: null,
          };
        }),
      )
      .execute();
  }

  const after = entries.length > 0 ? await currentConsent(app, profiles) : before;
  let unlinked = 0;
  const linkedProfileIds = events.map((e, i) => {
    const profileId = profileIds[i] ?? null;
    if (profileId === null) return null;
    // The request itself said "do not track me": its event is never tied to the person.
    const allowed =
      !carriesBrowserSignal(e, options.honorDnt) &&
      decide(catalog, after.get(profileId) ?? new Map(), { capability: 'link_events_to_profile' }).allowed;
    if (!allowed) unlinked++;
    return allowed ? profileId : null;
  });
  return { linkedProfileIds, confirmations: confirmations.map((c) => c.id), unlinked, state: after };
}
