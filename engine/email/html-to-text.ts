/**
 * The text part of an email from its HTML part, and the tidying of a written text part: plain
 * string work, no template engine (engine/email/templates.ts uses both).
 */

const ENTITIES: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', zwnj: '', zwj: '', shy: '',
  copy: '©', reg: '®', trade: '™', hellip: '…', mdash: '—', ndash: '–', middot: '·', bull: '•',
  lsquo: '‘', rsquo: '’', ldquo: '“', rdquo: '”', laquo: '«', raquo: '»', euro: '€', rarr: '→', larr: '←',
};

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, code: string) => {
    if (code.startsWith('#')) {
      const point = code[1] === 'x' || code[1] === 'X' ? parseInt(code.slice(2), 16) : parseInt(code.slice(1), 10);
      return point > 0 && point <= 0x10ffff && (point < 0xd800 || point > 0xdfff) ? String.fromCodePoint(point) : whole;
    }
    return ENTITIES[code.toLowerCase()] ?? whole;
  });
}

const BLOCK = 'p|div|h[1-6]|ul|ol|table|blockquote|section|article|header|footer|main|nav|aside|address|figure|pre';

/**
 * The text part of an HTML message, for clients that show no HTML (and for spam filters that
 * compare both): paragraphs and headings become blank-line-separated, `<br>` a line break, links
 * `text (url)`, list items `- item`; head, styles and hidden elements (the preheader) are dropped.
 */
export function htmlToText(html: string): string {
  let s = html
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/<(head|style|script|title)\b[\s\S]*?<\/\1\s*>/gi, '')
    .replace(/<(\w+)\b[^>]*?(?:\shidden\b|style\s*=\s*["'][^"']*display\s*:\s*none)[^>]*>[\s\S]*?<\/\1\s*>/gi, '')
    .replace(/\s+/g, ' ');
  s = s.replace(/<a\b[^>]*?\bhref\s*=\s*(["'])(.*?)\1[^>]*>([\s\S]*?)<\/a\s*>/gi, (_whole, _q, href: string, inner: string) => {
    const label = inner.replace(/<[^>]*>/g, '').trim();
    const url = decodeEntities(href.trim());
    if (!url || url.startsWith('#')) return inner;
    const shown = decodeEntities(label);
    if (!shown) return href.trim();
    if (shown === url || `mailto:${shown}` === url) return inner;
    return `${inner} (${href.trim()})`;
  });
  s = s
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<li\b[^>]*>/gi, '\n- ')
    .replace(/<\/li\s*>/gi, '')
    .replace(/<hr\b[^>]*>/gi, '\n\n')
    .replace(new RegExp(`</?(?:${BLOCK})\\b[^>]*>`, 'gi'), '\n\n')
    .replace(/<\/?(?:tr)\b[^>]*>/gi, '\n')
    .replace(/<[^>]*>/g, '');
  return tidyText(decodeEntities(s));
}

/** Trims each line, keeps at most one blank line between paragraphs, ends with no blank lines. */
export function tidyText(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((line) => line.replace(/[ \t\u00a0]+/g, ' ').trim())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}
