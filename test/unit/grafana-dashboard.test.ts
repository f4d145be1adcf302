import fs from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { Metric } from 'prom-client';
import { createDomainLimiter } from '../../engine/email/domain-limits';
import { capturingLogger } from '../support/log-capture';
import { createMetrics } from '../../engine/metrics/registry';
import type { Queues } from '../../engine/queues/producer';

/**
 * ops/grafana-dashboard.json against the engine's own registry: every metric a panel queries must be
 * one the engine registers, and every label it groups or filters by one that metric has. A renamed
 * metric or label fails here, not on an ops team's empty graph.
 */

const DASHBOARD = path.resolve(__dirname, '../../ops/grafana-dashboard.json');

interface Target {
  expr: string;
}
interface Panel {
  type: string;
  title: string;
  targets?: Target[];
  panels?: Panel[];
}

/** The registry of a process running everything: the API's and every worker's metrics. */
async function engineRegistry() {
  const queues = { counts: async () => ({}), oldestWaitingAgesMs: async () => ({}) } as unknown as Queues;
  const metrics = createMetrics(queues, capturingLogger('info').log, { overdueErasures: async () => 0, openErasures: async () => 0 });
  // The email worker's per-domain counter registers when a limit is configured; Redis is not touched until a send.
  createDomainLimiter({ redis: {} as Redis, prefix: 'cf', pseudonymKey: Buffer.alloc(32), limits: [{ domain: '*', max: 1, perMs: 1000 }], registry: metrics.registry });
  const series = new Map<string, readonly string[]>();
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    const labels = (metrics.registry.getSingleMetric(metric.name) as (Metric & { labelNames?: readonly string[] }) | undefined)?.labelNames ?? [];
    // Histograms and summaries are queried by their series' names.
    const type = String(metric.type);
    const suffixes = type === 'histogram' ? ['_bucket', '_sum', '_count'] : type === 'summary' ? ['', '_sum', '_count'] : [''];
    for (const suffix of suffixes) series.set(`${metric.name}${suffix}`, suffix === '_bucket' ? [...labels, 'le'] : type === 'summary' && suffix === '' ? [...labels, 'quantile'] : labels);
  }
  return series;
}

function allPanels(panels: readonly Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

/** What Prometheus adds to every series (scrape config), and PromQL words that look like names. */
const TARGET_LABELS = new Set(['job', 'instance']);
const PROMQL_WORDS = new Set(['sum', 'max', 'min', 'avg', 'count', 'rate', 'irate', 'increase', 'by', 'without', 'histogram_quantile', 'label_values', 'on', 'ignoring', 'and', 'or', 'unless', 'bool', 'topk', 'bottomk', 'clamp_min', 'time']);

describe('ops/grafana-dashboard.json', () => {
  const dashboard = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[]; templating: { list: Array<{ name: string; definition?: string }> } };
  const panels = allPanels(dashboard.panels).filter((p) => p.type !== 'row');
  const exprs = [
    ...panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: p.title, expr: t.expr }))),
    ...dashboard.templating.list.filter((v) => v.definition).map((v) => ({ where: `variable ${v.name}`, expr: v.definition as string })),
  ];

  it('queries only metrics the engine registers, each by labels it has', async () => {
    const series = await engineRegistry();
    expect(exprs.length).toBeGreaterThan(10);
    for (const { where, expr } of exprs) {
      // Strip strings and the range selectors ([$__rate_interval]) before looking for identifiers.
      const bare = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\[[^\]]*\]/g, '');
      const names = [...new Set(bare.match(/\bconsentflow_[a-zA-Z0-9_]+/g) ?? [])];
      expect([where, names.length > 0]).toEqual([where, true]);
      for (const name of names) expect([where, name, series.has(name)]).toEqual([where, name, true]);
      const known = new Set([...names.flatMap((n) => series.get(n) ?? []), ...TARGET_LABELS]);
      const used = [
        ...[...bare.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap((m) => (m[1] as string).split(',')),
        ...[...bare.matchAll(/\{([^}]*)\}/g)].flatMap((m) => (m[1] as string).split(',').map((kv) => kv.split(/=~|!~|!=|=/)[0] as string)),
        ...[...bare.matchAll(/label_values\([^,]+,\s*([a-zA-Z_]+)\)/g)].map((m) => m[1] as string),
      ]
        .map((l) => l.trim())
        .filter((l) => l !== '' && !PROMQL_WORDS.has(l));
      for (const label of used) expect([where, label, known.has(label)]).toEqual([where, label, true]);
    }
  });

  it('has a panel for each thing ops watch', () => {
    const text = exprs.map((e) => e.expr).join('\n');
    for (const metric of [
      'consentflow_ingest_events_total',
      'consentflow_pixel_rejected_total',
      'consentflow_queue_jobs',
      'consentflow_events_processed_total',
      'consentflow_email_sends_total',
      'consentflow_http_errors_total',
      'consentflow_http_rate_limited_total',
      'consentflow_erasure_requests_overdue',
    ]) {
      expect([metric, text.includes(metric)]).toEqual([metric, true]);
    }
  });

  it('is importable: unique panel ids, every panel placed on the grid, a datasource variable', () => {
    const ids = allPanels(dashboard.panels).map((p) => (p as Panel & { id: number }).id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of allPanels(dashboard.panels)) expect((p as Panel & { gridPos?: unknown }).gridPos).toEqual(expect.objectContaining({ w: expect.any(Number), h: expect.any(Number) }));
    expect(dashboard.templating.list.map((v) => v.name)).toContain('datasource');
  });
});
