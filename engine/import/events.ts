import type { ConsentChange } from '../../schemas/consent';
import type { AcceptedEvent, SegmentEvent } from '../../schemas/segment';
import { pseudonymize } from '../vault/crypto';
import type { Person } from './person';

/**
 * A person entered by hand or imported becomes an `identify` event, processed by the events
 * worker's own code (engine/events/process-batch.ts): identity resolution, the vault for what
 * identifies, minimisation of the rest, the consent ledger, tombstones, the rules. One path for
 * every way a person enters, so each one is stored, consented and erased alike.
 */

/**
 * The messageId of an imported row: a keyed hash of the source, the consent given with it and the
 * row's content. The events worker keeps one receipt per (source, messageId), so importing the same
 * row again writes nothing (the same person, no duplicate); a row that changed is a new identify of
 * the same person, which updates them. Keyed, because it is stored with the event and an unkeyed
 * hash of an address can be reversed by guessing.
 */
export function importMessageId(pseudonymKey: Buffer, sourceName: string, consent: ConsentChange | undefined, person: Person): string {
  const traits = Object.entries(person.traits).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const content = JSON.stringify([sourceName, consent ? [consent.grant, consent.notice?.id, consent.notice?.version] : null, person.email ?? null, person.userId ?? null, traits]);
  return `import-${pseudonymize(pseudonymKey, 'import-row', content)}`;
}

export interface PersonEventInput {
  readonly person: Person;
  readonly sourceId: string;
  readonly messageId: string;
  readonly at: Date;
  /** The consent recorded with the person; `sourceRef` says where the evidence is (a line, a reference). */
  readonly consent?: ConsentChange | undefined;
}

export function personEvent(input: PersonEventInput): AcceptedEvent {
  const { person, at } = input;
  // Built directly, like the consent API's events: an identify known only by its address has no
  // userId or anonymousId, which the tracking API's schema asks of a website.
  const event = {
    type: 'identify',
    messageId: input.messageId,
    ...(person.userId !== undefined ? { userId: person.userId } : {}),
    traits: { ...person.traits, ...(person.email !== undefined ? { email: person.email } : {}) },
    timestamp: at.toISOString(),
  } as SegmentEvent;
  return {
    sourceId: input.sourceId,
    messageId: input.messageId,
    receivedAt: at.toISOString(),
    occurredAt: at.toISOString(),
    signals: { gpc: false, dnt: false },
    ...(input.consent ? { consent: input.consent } : {}),
    event,
  };
}
