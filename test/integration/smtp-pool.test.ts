import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { createSmtpPool, type SmtpPool } from '../../engine/email/smtp-pool';

/**
 * The email worker's SMTP connections (engine/email/smtp-pool.ts) against a real SMTP server that
 * counts its connections: reuse, replacement, a relay closing idle connections, refusals, and login.
 */
interface Relay {
  readonly url: string;
  readonly port: number;
  readonly received: string[];
  connections: number;
  close(): Promise<void>;
}

async function relay(options: Partial<SMTPServerOptions> = {}): Promise<Relay> {
  const state: Relay = {
    url: '',
    port: 0,
    received: [],
    connections: 0,
    close: async () => undefined,
  };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 1_000,
    onConnect(_session, callback) {
      state.connections++;
      callback();
    },
    onData(stream, _session, callback) {
      let text = '';
      stream.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      stream.on('end', () => {
        state.received.push(/^Subject: (.*)$/m.exec(text)?.[1]?.trim() ?? '');
        callback(null);
      });
    },
    ...options,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return Object.assign(state, {
    url: `smtp://127.0.0.1:${port}`,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

const message = (subject: string) => Buffer.from(`From: a@example.com\r\nTo: b@example.com\r\nSubject: ${subject}\r\n\r\nbody\r\n`);
const envelope = { from: 'a@example.com', to: ['b@example.com'] };
const timeouts = { connectionTimeout: 5_000, greetingTimeout: 5_000, dnsTimeout: 5_000, socketTimeout: 10_000 };

describe('the SMTP pool', () => {
  const relays: Relay[] = [];
  const pools: SmtpPool[] = [];
  const start = async (options: Partial<SMTPServerOptions> = {}, url?: (r: Relay) => string, maxConnections = 2) => {
    const r = await relay(options);
    relays.push(r);
    const pool = createSmtpPool({ url: url ? url(r) : r.url, maxConnections, ...timeouts });
    pools.push(pool);
    return { relay: r, pool };
  };
  afterAll(async () => {
    for (const pool of pools) pool.close();
    for (const r of relays) await r.close();
  });

  it('carries many messages over at most maxConnections connections, and a fresh one after 100 messages', async () => {
    const { relay: r, pool } = await start();
    const replies = await Promise.all(Array.from({ length: 150 }, (_, i) => pool.send(envelope, message(`m${i}`))));
    expect(replies.every((reply) => /^250 /.test(reply.response))).toBe(true);
    expect(new Set(r.received).size).toBe(150);
    // Two connections at once; each replaced after its 100th message.
    expect(r.connections).toBeGreaterThanOrEqual(2);
    expect(r.connections).toBeLessThanOrEqual(4);
  });

  it('keeps the connection after a refused recipient (RSET), and sends the next message over it', async () => {
    let refuse = true;
    const { relay: r, pool } = await start(
      {
        onRcptTo(_address, _session, callback) {
          callback(refuse ? Object.assign(new Error('5.1.1 no such user'), { responseCode: 550 }) : null);
        },
      },
      undefined,
      1,
    );
    await expect(pool.send(envelope, message('refused'))).rejects.toMatchObject({ code: 'EENVELOPE', responseCode: 550, command: 'RCPT TO' });
    refuse = false;
    await pool.send(envelope, message('accepted'));
    expect(r.received).toEqual(['accepted']);
    expect(r.connections).toBe(1);
  });

  it('opens a new connection when the relay closed an idle one', async () => {
    // The relay drops a connection that is silent for 300 ms (with a 421, as smtp-server does).
    const { relay: r, pool } = await start({ socketTimeout: 300 });
    await pool.send(envelope, message('before'));
    await new Promise((resolve) => setTimeout(resolve, 800));
    await pool.send(envelope, message('after'));
    expect(r.received).toEqual(['before', 'after']);
    expect(r.connections).toBe(2);
  });

  it('fails a message with the relay closing the session (421) as transient, and the next one goes through', async () => {
    let calls = 0;
    const { relay: r, pool } = await start({
      onMailFrom(_address, _session, callback) {
        calls++;
        callback(calls === 1 ? Object.assign(new Error('4.3.2 try again later'), { responseCode: 421 }) : null);
      },
    });
    await expect(pool.send(envelope, message('first'))).rejects.toMatchObject({ responseCode: 421 });
    await pool.send(envelope, message('second'));
    expect(r.received).toEqual(['second']);
  });

  it('logs in with the credentials of the URL, and fails a message when the relay refuses them', async () => {
    const logins: string[] = [];
    const onAuth: SMTPServerOptions['onAuth'] = (auth, _session, callback) => {
      logins.push(`${auth.method} ${auth.username}:${auth.password}`);
      if (auth.password === 's3cret') callback(null, { user: auth.username });
      else callback(Object.assign(new Error('5.7.8 bad credentials'), { responseCode: 535 }));
    };
    const good = await start({ authOptional: false, allowInsecureAuth: true, onAuth }, (r) => `smtp://mailer:s3cret@127.0.0.1:${r.port}`);
    await good.pool.send(envelope, message('signed in'));
    expect(good.relay.received).toEqual(['signed in']);
    expect(logins).toEqual([expect.stringMatching(/^(PLAIN|LOGIN) mailer:s3cret$/)]);

    const bad = await start({ authOptional: false, allowInsecureAuth: true, onAuth }, (r) => `smtp://mailer:wrong@127.0.0.1:${r.port}`);
    await expect(bad.pool.send(envelope, message('refused'))).rejects.toMatchObject({ code: 'EAUTH', responseCode: 535 });
    expect(bad.relay.received).toEqual([]);
  });

  it('fails messages once closed, and while the relay cannot be reached', async () => {
    const { relay: r, pool } = await start();
    await r.close();
    await expect(pool.send(envelope, message('nobody home'))).rejects.toMatchObject({ code: expect.stringMatching(/^(ESOCKET|ECONNECTION)$/) });
    pool.close();
    await expect(pool.send(envelope, message('closed'))).rejects.toMatchObject({ code: 'ECLOSED' });
  });
});
