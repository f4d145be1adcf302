import fs from 'node:fs';
import type { Page } from 'playwright-core';

/** axe-core as shipped (devDependency), read once. */
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  readonly id: string;
  readonly impact: string | null;
  readonly help: string;
  readonly nodes: ReadonlyArray<{ readonly target: unknown; readonly failureSummary?: string }>;
}

/**
 * axe-core's violations on the page as it stands, with every rule it has on (no rule disabled).
 * It is injected through Playwright's evaluate, not a `<script>` tag: the engine's own pages forbid
 * every script by CSP (`default-src 'none'`), and run with JavaScript disabled too, where evaluate
 * still works; a page that allows scripts (a test site) gets it the same way.
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(AXE_SOURCE);
  const result = (await page.evaluate('axe.run(document, { resultTypes: ["violations"] })')) as { violations: AxeViolation[] };
  return result.violations;
}

/** One line per violation and element, for an `expect(...).toEqual([])` that says what is wrong. */
export function describeViolations(violations: readonly AxeViolation[]): string[] {
  return violations.map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.map((n) => `${JSON.stringify(n.target)} ${n.failureSummary ?? ''}`).join('; ')}`);
}
