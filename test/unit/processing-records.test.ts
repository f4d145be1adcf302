import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../../engine/config';
import { buildProcessingRecords } from '../../engine/reports/processing-records';
import { processingRecordsMarkdown } from '../../engine/reports/processing-records-md';
import { relayAddress, webhookAddress } from '../../engine/reports/records-recipients';
import { processingRecordsInput } from '../../engine/reports/records-input';
import { retentionText } from '../../engine/reports/records-retention';
import { compileRuleSet } from '../../engine/rules/compile';
import { loadRuleSet } from '../../engine/rules/load';
import { ProcessingRecords } from '../../schemas/processing-records';
import { SHIPPED_RULES_DIR } from '../support/rules';

interface PurposesYaml {
  purposes: Record<string, { legal_basis: string; retention: string; allows: string[] }>;
}
interface PropertiesYaml {
  traits: { allow: string[]; pii: string[] };
}

const purposesFile = parse(fs.readFileSync(path.join(SHIPPED_RULES_DIR, 'purposes.yaml'), 'utf8')) as PurposesYaml;
const propertiesFile = parse(fs.readFileSync(path.join(SHIPPED_RULES_DIR, 'properties.yaml'), 'utf8')) as PropertiesYaml;

function shippedRules() {
  const loaded = loadRuleSet(SHIPPED_RULES_DIR);
  if (!loaded.ok) throw new Error(`shipped rules have problems: ${JSON.stringify(loaded.problems)}`);
  return { purposes: loaded.ruleSet.purposes, compiled: compileRuleSet(loaded.ruleSet) };
}

const SMTP_URL = 'smtps://mailer:Sup3rSecret@relay.example.com:465?pool=true&secure=true';
const WEBHOOKS = 'https://hooks.example.com/v1/erase?token=hook-token-1,https://crm-user:crm-pass@crm.example.org/gdpr/forget#frag';

function records(env: Record<string, string> = {}) {
  const config = loadConfig({ NODE_ENV: 'test', RULES_DIR: SHIPPED_RULES_DIR, DATA_DIR: '/srv/consentflow', ...env });
  return buildProcessingRecords(processingRecordsInput(config, shippedRules(), new Date('2026-11-29T10:00:00Z')));
}

describe('records of processing (GDPR Art. 30)', () => {
  it('lists every purpose of purposes.yaml with its legal basis, retention and what it allows, in a valid document', () => {
    const r = records({ SMTP_URL, ERASURE_WEBHOOKS: WEBHOOKS });
    expect(ProcessingRecords.parse(r)).toEqual(r);
    expect(r.generatedAt).toBe('2026-11-29T10:00:00.000Z');
    expect(r.purposes.map((p) => p.name)).toEqual(Object.keys(purposesFile.purposes));
    for (const [name, entry] of Object.entries(purposesFile.purposes)) {
      const purpose = r.purposes.find((p) => p.name === name);
      expect(purpose).toMatchObject({ legalBasis: entry.legal_basis, retention: entry.retention });
      expect(purpose?.allows.map((a) => a.capability)).toEqual(entry.allows);
      expect(r.retention).toContainEqual(expect.objectContaining({ data: `data kept for the purpose ${name}`, period: entry.retention }));
    }
    expect(r.purposes.find((p) => p.name === 'email_marketing')).toMatchObject({
      legalBasisArticle: 'GDPR Art. 6(1)(a)',
      doubleOptIn: true,
      retentionText: '2 years',
      campaigns: ['abandoned_cart', 'reengagement', 'weekly_digest', 'welcome_series'],
    });
  });

  it('says which purposes and channels each campaign uses, and which segments profile', () => {
    const r = records();
    expect(r.campaigns.find((c) => c.id === 'abandoned_cart')).toEqual({
      id: 'abandoned_cart',
      name: 'Abandoned cart reminder',
      file: 'campaigns/abandoned_cart.yaml',
      purposes: ['email_marketing', 'profiling'],
      channels: ['email'],
      trigger: 'event',
      behavioural: true,
    });
    expect(r.campaigns.find((c) => c.id === 'weekly_digest')).toMatchObject({ trigger: 'schedule', behavioural: false, channels: ['email'] });
    expect(r.segments.find((s) => s.id === 'newsletter_subscribers')).toMatchObject({ profiling: false, purposes: [] });
    expect(r.segments.find((s) => s.id === 'engaged_readers')).toMatchObject({ profiling: true, purposes: ['profiling'] });
    expect(r.purposes.find((p) => p.name === 'profiling')?.segments).toContain('engaged_readers');
  });

  it('takes the categories of data from properties.yaml: identifying traits in the vault, the rest on the profile', () => {
    const r = records();
    const identity = r.personalData.find((d) => d.category === 'contact and identity data');
    expect(identity).toMatchObject({ identifying: true });
    expect(identity?.fields).toEqual(expect.arrayContaining(['email', 'phone', ...propertiesFile.traits.pii]));
    expect(identity?.storage).toContain('vault');
    const traits = r.personalData.find((d) => d.category === 'profile traits');
    expect(traits).toMatchObject({ identifying: false, fields: propertiesFile.traits.allow });
    const events = r.personalData.find((d) => d.category.startsWith('behaviour'));
    expect(events?.fields).toContain('Order Completed: order_id, total, currency');
    expect(r.dataSubjects.map((s) => s.category)).toEqual(['website and app visitors', 'identified users and customers', 'email recipients', 'people exercising their rights']);
  });

  it('names the SMTP relay and each processor webhook by origin only: no credentials, path, query or fragment', () => {
    const r = records({ SMTP_URL, ERASURE_WEBHOOKS: WEBHOOKS, ERASURE_WEBHOOK_SECRET: 'a-webhook-secret-of-some-length' });
    expect(r.recipients.map((x) => [x.kind, x.address])).toEqual([
      ['smtp_relay', 'smtps://relay.example.com:465'],
      ['erasure_webhook', 'https://hooks.example.com'],
      ['erasure_webhook', 'https://crm.example.org'],
    ]);
    expect(r.recipients[1]?.receives).toContain('signed with HMAC-SHA256');
    const all = JSON.stringify(r) + processingRecordsMarkdown(r);
    for (const secret of ['mailer', 'Sup3rSecret', 'pool=true', 'hook-token-1', 'crm-user', 'crm-pass', 'frag', 'a-webhook-secret']) expect(all).not.toContain(secret);
    expect(r.transfers).toEqual({ configured: false, statement: expect.stringMatching(/^none configured/) });
  });

  it('says "outbox files (no relay)" when SMTP_URL is unset, and reflects the vault database, DKIM and retention settings', () => {
    const r = records({
      DATABASE_URL: 'postgres://app:app-pass@db.internal/cf',
      VAULT_DATABASE_URL: 'postgres://vault:vault-pass@vault.internal/cf',
      DKIM_DOMAIN: 'news.example.com',
      DKIM_SELECTOR: 's1',
      DKIM_PRIVATE_KEY_FILE: '/etc/dkim.pem',
      RETENTION_EVENTS_MONTHS: '6',
      RETENTION_INACTIVE_PROFILE_MONTHS: '18',
      ERASURE_TOMBSTONE_DAYS: '45',
      ERASURE_DEADLINE_DAYS: '20',
      RETENTION_CRON: 'off',
    });
    expect(r.recipients).toEqual([{ kind: 'outbox_files', name: 'outbox files (no relay)', address: '/srv/consentflow/outbox', receives: expect.any(String) }]);
    const security = Object.fromEntries(r.security.map((m) => [m.measure, m.description]));
    expect(security['vault separation']).toMatch(/separate database \(VAULT_DATABASE_URL\)/);
    expect(security['email authentication']).toMatch(/^DKIM signing on .*news\.example\.com/);
    const retention = Object.fromEntries(r.retention.map((e) => [e.data, e]));
    expect(retention['raw events (app.events)']?.period).toMatch(/^the shorter of 6 months and 13mo/);
    expect(retention['inactive profiles (not seen, in no active journey)']?.source).toContain('RETENTION_INACTIVE_PROFILE_MONTHS=18');
    expect(retention['tombstones of erased identifiers (keyed hashes)']?.period).toBe('45 days');
    expect(retention['erasure requests']?.source).toContain('ERASURE_DEADLINE_DAYS=20');
    expect(retention['when retention runs']?.period).toMatch(/^not scheduled/);
    const all = JSON.stringify(r);
    for (const secret of ['app-pass', 'vault-pass', 'db.internal', 'vault.internal']) expect(all).not.toContain(secret);
  });

  it('renders Markdown with every purpose, retention period, recipient and security measure', () => {
    const r = records({ SMTP_URL, ERASURE_WEBHOOKS: WEBHOOKS });
    const md = processingRecordsMarkdown(r);
    expect(md.startsWith('# Records of processing activities (GDPR Art. 30)\n')).toBe(true);
    for (const [name, entry] of Object.entries(purposesFile.purposes)) {
      expect(md).toContain(`### ${name}\n`);
      expect(md).toContain(`**Retention**: ${entry.retention} (`);
    }
    for (const recipient of r.recipients) expect(md).toContain(recipient.address);
    for (const measure of r.security) expect(md).toContain(measure.measure);
    for (const heading of ['(Art. 30(1)(b))', '(Art. 30(1)(c))', '(Art. 30(1)(d))', '(Art. 30(1)(e))', '(Art. 30(1)(f))', '(Art. 30(1)(g)']) expect(md).toContain(heading);
  });

  it('shows addresses without what could carry a secret, and never echoes what it cannot parse', () => {
    expect(relayAddress('smtp://u:p@relay.example.com:587/path?x=1')).toBe('smtp://relay.example.com:587');
    expect(relayAddress('smtp://relay.example.com')).toBe('smtp://relay.example.com');
    expect(relayAddress('not a url u:p')).toBe('(an SMTP relay)');
    expect(webhookAddress('https://u:p@h.example.com:8443/a/b?c=d#e')).toBe('https://h.example.com:8443');
    expect(webhookAddress('::')).toBe('(a webhook)');
    expect(retentionText('1y')).toBe('1 year');
    expect(retentionText('6w')).toBe('6 weeks');
    expect(retentionText('90d')).toBe('90 days');
  });
});
