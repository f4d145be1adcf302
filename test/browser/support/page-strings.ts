import { PAGE_STRINGS } from '../../../engine/http/pages/strings';

/**
 * What of the English strings table shows on a page that should be all Polish: every piece of an
 * English string between its `{placeholders}` (4 characters or more, so "." or " on " do not count),
 * and any of `extra` (English texts the page takes from elsewhere: purposes' descriptions, the
 * retention wording), found in `text`, plus common English words standing alone.
 */
export function englishLeftIn(text: string, extra: readonly string[] = []): string[] {
  const pieces = [...Object.values(PAGE_STRINGS.en), ...extra]
    .flatMap((value) => value.split(/\{\w+\}/))
    .map((piece) => piece.trim())
    .filter((piece) => piece.replace(/[^\p{L}]/gu, '').length >= 4);
  const found = new Set(pieces.filter((piece) => text.includes(piece)));
  for (const word of text.match(/\b(the|and|your|you|this|our|was|not|nothing|please|link is|GDPR)\b/gi) ?? []) found.add(word);
  return [...found];
}
