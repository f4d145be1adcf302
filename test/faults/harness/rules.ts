import fs from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { tempDir } from '../../support/config';
import { SHIPPED_RULES_DIR } from '../../support/rules';

/**
 * The fault scenarios' RULES_DIR: the shipped purposes, segments and templates, with
 * - email_marketing granted by the site's own consent event (no double opt-in round trip: the
 *   scenarios are about faults, double opt-in has its own tests);
 * - the shipped campaigns replaced by two without quiet hours or waits, so every send is due at once:
 *   `fault_welcome` (one welcome email on entering newsletter_subscribers) and `fault_digest` (a
 *   broadcast to the segment `fault_audience`, people whose trait `plan` is `digest`: an audience a
 *   scenario fixes before its fault; the cron is a yearly one, the scenario adds the tick itself).
 * With `linkByDefault`, analytics is on legitimate interest, so events without a consent choice are
 * still stored on their profile (what the ingestion scenarios count).
 */
export function faultRules(options: { linkByDefault?: boolean } = {}): string {
  const dir = tempDir('cf-fault-rules');
  fs.cpSync(SHIPPED_RULES_DIR, dir, { recursive: true });
  const purposesFile = path.join(dir, 'purposes.yaml');
  const purposes = parse(fs.readFileSync(purposesFile, 'utf8')) as { purposes: Record<string, Record<string, unknown>> };
  (purposes.purposes.email_marketing as Record<string, unknown>).double_opt_in = false;
  if (options.linkByDefault) (purposes.purposes.analytics as Record<string, unknown>).legal_basis = 'legitimate_interest';
  fs.writeFileSync(purposesFile, stringify(purposes));
  const campaigns = path.join(dir, 'campaigns');
  fs.rmSync(campaigns, { recursive: true });
  fs.mkdirSync(campaigns);
  fs.writeFileSync(
    path.join(campaigns, 'fault_welcome.yaml'),
    `id: fault_welcome
name: Fault welcome
purposes: [email_marketing]
trigger:
  segment_entered: newsletter_subscribers
steps:
  - send:
      template: welcome
`,
  );
  fs.writeFileSync(
    path.join(campaigns, 'fault_digest.yaml'),
    `id: fault_digest
name: Fault digest
purposes: [email_marketing]
trigger:
  schedule:
    cron: "0 0 1 1 *"
    timezone: UTC
  segment: fault_audience
steps:
  - send:
      template: weekly_digest
`,
  );
  fs.writeFileSync(
    path.join(dir, 'segments', 'fault_audience.yaml'),
    `id: fault_audience
name: The broadcast's audience
conditions:
  trait: plan
  in: [digest]
`,
  );
  return dir;
}
