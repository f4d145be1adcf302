/**
 * The few HTML pages people without a login see (confirmation, preferences, unsubscribe, forget).
 * Server-rendered, no script, no third-party resources; every value escaped.
 *
 * `escapeHtml` is the one escaping helper of every page: any value that is not a literal of the
 * source (a token, a purpose's text, a date, an id), wherever it goes, text or a quoted attribute,
 * passes through it. Data people or websites submit on public routes (traits, names, form and page
 * references) is never put on a page at all; were it ever, it would go through here (Mautic
 * CVE-2022-25772 was a page that did not). Attributes are always double-quoted, so escaping
 * `& < > " '` is enough in both places (OWASP XSS Prevention Cheat Sheet, rules 1 and 2).
 */

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

// Colours meet WCAG 2.2 AA contrast (1.4.3, 1.4.11): text #1a1a1a and #4a4a4a on white (17:1, 8.9:1),
// links #0b57a4 (7:1), and the focus ring is a 3px outline of that blue, shown on every control
// reached by keyboard (2.4.7), never removed. No web font, no image: nothing is loaded from anywhere.
const STYLE = `body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a;background:#fff}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}a{color:#0b57a4}
fieldset{border:1px solid #767676;border-radius:6px;margin:0 0 1rem;padding:.75rem 1rem}legend{font-weight:600;padding:0 .25rem}
.purpose{margin:1rem 0 0}.purpose label{display:flex;gap:.6rem;align-items:flex-start;cursor:pointer}
.purpose input{width:1.25rem;height:1.25rem;margin:.15rem 0 0;flex:none}.details{margin:.25rem 0 0 1.85rem}
button{font:inherit;padding:.5rem 1.25rem;border-radius:6px;border:1px solid #1a1a1a;background:#1a1a1a;color:#fff;cursor:pointer}
:focus-visible{outline:3px solid #0b57a4;outline-offset:2px}
.muted{color:#4a4a4a;font-size:.9rem}.notice{padding:.75rem 1rem;border-radius:6px;background:#eef6ee}.error{background:#fbeaea}`;

/** A whole page; `body` must already be escaped HTML. */
export function page(lang: string, title: string, body: string): string {
  return `<!doctype html>
<html lang="${escapeHtml(lang)}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><main><h1>${escapeHtml(title)}</h1>
${body}
</main></body></html>
`;
}
