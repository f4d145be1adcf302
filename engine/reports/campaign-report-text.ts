import type { CampaignReport } from '../../schemas/campaign-report';

/** The campaign report as a terminal reads it: the enrolments, a table of send steps, the goal. */
export function campaignReportText(report: CampaignReport): string {
  const c = report.campaign;
  const e = report.enrolments;
  const lines = [
    `Campaign ${c.id}${c.name ? ` (${c.name})` : ''}${c.inRuleSet ? '' : ': no longer in the running rule set'}`,
    `Enrolled: ${e.total} (${e.people} people): ${e.active} active, ${e.completed} completed, ${e.exited} exited, ${e.ended} ended`,
    '',
  ];
  const header = ['step', 'template', 'scheduled', 'pending', 'sent', 'skipped', 'cancelled', 'bounced', 'failed', 'opened', 'clicked', 'unsubscribed'];
  const rows = report.steps.map((s) => [
    `${s.step}${s.inRuleSet ? '' : ' (old)'}`,
    s.template ?? '-',
    ...[s.scheduled, s.pending, s.sent, s.skipped, s.cancelled, s.bounced, s.failed, s.opened, s.clicked, s.unsubscribed].map(String),
  ]);
  if (rows.length === 0) lines.push('No send steps.');
  else {
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
    const line = (cells: string[]) => cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number))).join('  ').trimEnd();
    lines.push(line(header), ...rows.map(line));
    for (const s of report.steps) {
      const reasons = Object.entries(s.skippedByReason);
      if (reasons.length > 0) lines.push(`  ${s.step} skipped: ${reasons.map(([reason, n]) => `${reason} ${n}`).join(', ')}`);
    }
  }
  lines.push('');
  const g = report.goal;
  lines.push(g ? `Goal (exit ${g.kind}: ${g.description}): ${g.conversions} conversions, ${(g.rate * 100).toFixed(1)}% of enrolments` : 'Goal: none (the campaign has no exit)');
  return lines.join('\n');
}
