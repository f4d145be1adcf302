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

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}
h1{font-size:1.5rem}fieldset{border:1px solid #ccc;border-radius:6px;margin:0 0 1rem;padding:.75rem 1rem}
legend{font-weight:600}button{font:inherit;padding:.5rem 1.25rem;border-radius:6px;border:1px solid #1a1a1a;background:#1a1a1a;color:#fff;cursor:pointer}
.muted{color:#555;font-size:.9rem}.notice{padding:.75rem 1rem;border-radius:6px;background:#eef6ee}.error{background:#fbeaea}`;

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
