import type { QueueCounts } from '../../queues/producer';
import { escapeHtml } from '../pages/layout';
import type { FailedJob } from './queue-routes';
import { CSRF_FIELD } from './session';

export interface DashboardView {
  readonly keyName: string;
  readonly generatedAt: Date;
  readonly queues: ReadonlyArray<{
    readonly name: string;
    readonly description: string;
    readonly counts: QueueCounts;
    readonly failed: { readonly total: number; readonly jobs: readonly FailedJob[] };
  }>;
  /** The session's CSRF token; undefined when the page was fetched with a Bearer key (no forms then). */
  readonly csrf: string | undefined;
}

const STATES: ReadonlyArray<keyof QueueCounts> = ['wait', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed'];

// The shared layout is narrow (a consent form); tables need room. Inline, as the page's CSP allows.
const STYLE = `<style>body{max-width:75rem}table{border-collapse:collapse;width:100%;margin:0 0 1.5rem;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}
td form{margin:0}td button,header button{padding:.2rem .8rem;font-size:.85rem}h2{font-size:1.2rem;margin-top:2rem}h3{font-size:1rem}
header{display:flex;gap:1rem;align-items:baseline;justify-content:space-between}code{word-break:break-all}</style>`;

const text = (value: string | null): string => (value === null ? '<span class="muted">–</span>' : escapeHtml(value));

function retryForm(queue: string, job: FailedJob, csrf: string | undefined): string {
  if (csrf === undefined) return '';
  const action = `/admin/v1/queues/${encodeURIComponent(queue)}/jobs/${encodeURIComponent(job.id)}/retry`;
  return `<form method="post" action="${escapeHtml(action)}"><input type="hidden" name="${CSRF_FIELD}" value="${escapeHtml(csrf)}"><button type="submit">Retry</button></form>`;
}

function countsTable(view: DashboardView): string {
  const head = STATES.map((s) => `<th>${escapeHtml(s)}</th>`).join('');
  const rows = view.queues
    .map((q) => `<tr><th scope="row" title="${escapeHtml(q.description)}">${escapeHtml(q.name)}</th>${STATES.map((s) => `<td class="n">${q.counts[s]}</td>`).join('')}</tr>`)
    .join('\n');
  return `<table><thead><tr><th>queue</th>${head}</tr></thead><tbody>\n${rows}\n</tbody></table>`;
}

function failedSection(queue: DashboardView['queues'][number], csrf: string | undefined): string {
  const { total, jobs } = queue.failed;
  const heading = `<h3>${escapeHtml(queue.name)} <span class="muted">(${total} failed${total > jobs.length ? `; the latest ${jobs.length} shown` : ''})</span></h3>`;
  if (jobs.length === 0) return `${heading}\n<p class="muted">No failed jobs.</p>`;
  const rows = jobs
    .map(
      (job) =>
        `<tr><td><code>${escapeHtml(job.id)}</code></td><td>${escapeHtml(job.name)}</td><td class="n">${job.attemptsMade}</td>` +
        `<td>${text(job.failedReason)}</td><td>${text(job.failedAt)}</td><td>${retryForm(queue.name, job, csrf)}</td></tr>`,
    )
    .join('\n');
  return `${heading}\n<table><thead><tr><th>job</th><th>name</th><th>attempts</th><th>reason</th><th>failed at</th><th></th></tr></thead><tbody>\n${rows}\n</tbody></table>`;
}

/**
 * The queue dashboard's body: counts per queue and state, then each queue's latest failed jobs with
 * a retry form. No script and no external resource; every value is escaped (failure reasons are
 * scrubbed of PII before they get here, and job payloads are never read out at all).
 */
export function dashboardBody(view: DashboardView): string {
  const session =
    view.csrf === undefined
      ? '<p class="muted">Fetched with an API key: sign in at <a href="/admin/login">/admin/login</a> to retry jobs from this page.</p>'
      : '<form method="post" action="/admin/logout"><button type="submit">Sign out</button></form>';
  return `${STYLE}
<header><p class="muted">Key <strong>${escapeHtml(view.keyName)}</strong> · as of ${escapeHtml(view.generatedAt.toISOString())} · <a href="/admin/v1/dashboard">refresh</a></p>${session}</header>
<h2>Jobs per state</h2>
${countsTable(view)}
<h2>Failed jobs</h2>
<p class="muted">Job payloads are never shown here: they can hold personal data. Reasons are shown with addresses, phone numbers and card numbers removed.</p>
${view.queues.map((q) => failedSection(q, view.csrf)).join('\n')}`;
}
