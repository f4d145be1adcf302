import {
  SUBJECT_EXPORT_FORMAT,
  SUBJECT_EXPORT_FORMAT_VERSION,
  SUBJECT_EXPORT_SCHEMA_ID,
  type ExportedSource,
  SubjectExportHead,
} from '../../../schemas/subject-export';
import type { Keys } from '../../config';
import type { Databases } from '../../db/connect';
import type { DbOrTrx } from '../../db/types';
import type { SubjectIdentifier } from '../../identity/lookup';
import { readConsent } from './consent';
import { readIdentity } from './identity';
import { readJourneys } from './journeys';
import { decisionPages, eventPages } from './pages';
import { readProfile } from './profile';
import { exportProfiles } from './subject-ids';

/**
 * The subject export (GDPR Art. 15 access, Art. 20 portability): one JSON document of everything
 * the engine holds about a person, in the shape of schemas/subject-export.ts.
 *
 * Opening it finds the person and reads (and decrypts) the parts that are bounded per person; the
 * document is then written as a sequence of text chunks, the events and decisions a page at a time,
 * so neither the engine nor the reader holds more than a page however many events there are.
 */
export interface SubjectExportStream {
  /** The pseudonymous profile exported: what the caller logs (never the identifier asked for). */
  readonly profileId: string;
  readonly pendingMerges: readonly string[];
  /** The document, in chunks that concatenate to one JSON text. Read it once. */
  chunks(): AsyncGenerator<string>;
}

export interface ExportOptions {
  /** Why the export was made (a ticket, a letter); kept in the document's header. */
  readonly reason: string | null;
  readonly now?: Date;
}

/** Undefined when nobody with the identifier is known. Decrypts the person's vault fields. */
export async function openSubjectExport(databases: Databases, keys: Keys, id: SubjectIdentifier, options: ExportOptions): Promise<SubjectExportStream | undefined> {
  const profiles = await exportProfiles(databases.vaultDb, keys, id);
  if (!profiles) return undefined;
  const now = options.now ?? new Date();
  const ids = [profiles.profileId, ...profiles.pendingMerges];
  const db = databases.db;
  const identity = await readIdentity(databases.vaultDb, keys.master, profiles.profileId);
  const profile = await readProfile(db, profiles);
  const consent = await readConsent(db, ids, now);
  const journeys = await readJourneys(db, ids);
  // Checked against the published schema before the first byte: a mistake here fails the request
  // with a 500, not a document that does not match its own $schema.
  const head = SubjectExportHead.parse({
    $schema: SUBJECT_EXPORT_SCHEMA_ID,
    format: SUBJECT_EXPORT_FORMAT,
    formatVersion: SUBJECT_EXPORT_FORMAT_VERSION,
    generatedAt: now.toISOString(),
    reason: options.reason,
    identity,
    profile,
    consent,
    ...journeys,
  } satisfies SubjectExportHead);
  return { profileId: profiles.profileId, pendingMerges: profiles.pendingMerges, chunks: () => writeDocument(db, ids, head) };
}

/** Every source id the document mentions, collected as it is written (a handful: one per site or app). */
class SourceIds {
  private readonly ids = new Set<string>();
  add(id: string | null | undefined): void {
    // Traits set by a campaign carry `campaign:ID`, not a source id.
    if (id && UUID.test(id)) this.ids.add(id.toLowerCase());
  }
  async describe(db: DbOrTrx): Promise<ExportedSource[]> {
    if (this.ids.size === 0) return [];
    return db.selectFrom('app.sources').select(['id', 'name']).where('id', 'in', [...this.ids]).orderBy('name').orderBy('id').execute();
  }
}
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * One top-level member per line and one array element per line, so the file reads well in a pager
 * and a line-oriented tool can pick it apart; the whole is one JSON value.
 */
async function* writeDocument(db: DbOrTrx, profileIds: readonly string[], head: SubjectExportHead): AsyncGenerator<string> {
  const sources = new SourceIds();
  head.identity.fields.forEach((f) => sources.add(f.sourceId));
  head.identity.identifiers.forEach((i) => sources.add(i.sourceId));
  for (const p of [head.profile, ...head.profile.pendingMerges]) {
    sources.add(p.sourceId);
    p.traits.forEach((t) => sources.add(t.sourceId));
  }
  head.consent.ledger.forEach((r) => sources.add(r.source.id));
  head.consent.confirmations.forEach((c) => sources.add(c.sourceId));

  yield `{${Object.entries(head).map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`).join(',\n')},\n`;
  yield* array('decisions', decisionPages(db, profileIds));
  yield ',\n';
  yield* array('events', eventPages(db, profileIds), (e) => sources.add(e.sourceId));
  yield `,\n"sources":${JSON.stringify(await sources.describe(db))}}\n`;
}

async function* array<T>(key: string, pages: AsyncIterable<readonly T[]>, visit?: (item: T) => void): AsyncGenerator<string> {
  yield `${JSON.stringify(key)}:[`;
  let first = true;
  for await (const page of pages) {
    let chunk = '';
    for (const item of page) {
      visit?.(item);
      chunk += `${first ? '\n' : ',\n'}${JSON.stringify(item)}`;
      first = false;
    }
    yield chunk;
  }
  yield first ? ']' : '\n]';
}
