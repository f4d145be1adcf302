import type { z } from 'zod';
import { SegmentEvent } from '../../schemas/segment';
import type { PurposeCatalog } from '../consent/purposes';
import { CONSENT_EVENT_NAMES } from '../consent/requests';

/**
 * The input of `consentflow rules simulate`: a log of Segment-format events, one JSON object a line,
 * each with the time it happened. A `Consent Updated` event's `properties.purposes` must name
 * declared purposes, each true or false, since the simulator grants and withdraws from it.
 */

export const SimEvent = SegmentEvent.refine((e) => e.timestamp !== undefined, {
  message: 'expected a timestamp: the time the event happened, e.g. 2026-11-29T10:00:00Z',
  path: ['timestamp'],
});
export type SimEvent = z.infer<typeof SimEvent>;

export type SimEventsParse = { readonly ok: true; readonly events: SimEvent[] } | { readonly ok: false; readonly problems: string[] };

/** The value as a plain object, or undefined for anything else (null, arrays, scalars). */
export const asRecord = (value: unknown): Record<string, unknown> | undefined =>
  value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;

function consentProblem(event: SimEvent, catalog: PurposeCatalog): string | undefined {
  if (event.type !== 'track' || !CONSENT_EVENT_NAMES.has(event.event)) return undefined;
  const purposes = asRecord(event.properties?.purposes);
  if (!purposes) return 'properties.purposes: expected an object {"purpose": true | false}';
  for (const [name, value] of Object.entries(purposes)) {
    if (!catalog.get(name)) return `properties.purposes.${name}: unknown purpose; declared in rules/purposes.yaml: ${catalog.names.join(', ')}`;
    if (typeof value !== 'boolean') return `properties.purposes.${name}: expected true or false`;
  }
  return undefined;
}

/** One event per line (blank lines skipped); each problem as `FILE:LINE: message`. */
export function parseSimEvents(text: string, file: string, catalog?: PurposeCatalog): SimEventsParse {
  const events: SimEvent[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((line, index) => {
    if (line.trim() === '') return;
    const at = `${file}:${index + 1}`;
    let data: unknown;
    try {
      data = JSON.parse(line);
    } catch (err) {
      problems.push(`${at}: not valid JSON: ${(err as Error).message}`);
      return;
    }
    const parsed = SimEvent.safeParse(data);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => (i.path.length > 0 ? `${i.path.map(String).join('.')}: ${i.message}` : i.message));
      problems.push(`${at}: ${issues.join('; ')}`);
      return;
    }
    const consent = catalog && consentProblem(parsed.data, catalog);
    if (consent) problems.push(`${at}: ${consent}`);
    else events.push(parsed.data);
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, events };
}
