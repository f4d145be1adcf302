import { capturingLogger } from '../support/log-capture';

const EMAIL = 'jan.kowalski@example.com';

describe('log redaction', () => {
  it('keeps an email address out of every form of logger call', () => {
    const { log, text, lines } = capturingLogger();
    log.info({ email: EMAIL }, 'by field');
    log.info({ traits: { email: EMAIL } }, 'nested field');
    log.info({ profile: { contact: EMAIL } }, 'unknown field');
    log.info(`in the message ${EMAIL}`);
    log.info('printf style %s', EMAIL);
    log.info({ url: `/v1/pixel?email=${encodeURIComponent(EMAIL)}` }, 'url-encoded');
    log.error({ err: new Error(`bad address ${EMAIL}`) }, 'error text');
    log.child({ who: EMAIL }).warn('child binding');
    expect(lines).toHaveLength(8);
    expect(text()).not.toContain('jan.kowalski');
    expect(text()).toContain('[email]');
  });

  it('truncates a full IPv4 address to its /24 network', () => {
    const { log, text } = capturingLogger();
    log.info({ client: '203.0.113.77' }, 'from 198.51.100.23');
    expect(text()).not.toMatch(/203\.0\.113\.77|198\.51\.100\.23/);
    expect(text()).toContain('203.0.113.0');
  });

  it('leaves the server\'s own loopback and unspecified addresses readable', () => {
    const { log, text } = capturingLogger();
    log.info('listening on http://127.0.0.1:8080 and 0.0.0.0:8080');
    expect(text()).toContain('http://127.0.0.1:8080 and 0.0.0.0:8080');
  });
});
