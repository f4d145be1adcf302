/**
 * The SMTP ceiling, shared by `npm run bench:email` and the suite's ceilings: the minimal client
 * (scripts/bench/smtp-client.ts, its own process) sends one message to the sink (smtp-sink.ts) as
 * fast as the sink takes it, for a fixed time; the rate is counted at the sink, from the first
 * message received to the last.
 */
import fs from 'node:fs';
import path from 'node:path';
import { runNode } from './harness';
import type { Receipt, SmtpSink } from './smtp-sink';

/** What smtp-client.ts reads: where to send, with which pool, for how long, and the message. */
export interface MinimalClientSpec {
  readonly url: string;
  readonly poolSize: number;
  readonly seconds: number;
  readonly from: string;
  /** nodemailer's message options: to, subject, text, html, headers. */
  readonly message: object;
}

export interface CeilingRun {
  readonly rate: number;
  readonly received: number;
  readonly failed: number;
  readonly bytes: number;
}

/** Messages a second at the sink, from the first message received to the last. */
export function rateOf(receipts: readonly Receipt[]): number {
  if (receipts.length < 2) return 0;
  const first = (receipts[0] as Receipt).at;
  const last = (receipts[receipts.length - 1] as Receipt).at;
  return last > first ? ((receipts.length - 1) * 1_000) / (last - first) : 0;
}

/** One run of the minimal client; `raw`: the MIME built once, the same bytes sent every time. `dir`: where its spec file goes. */
export async function minimalClientRun(sink: SmtpSink, spec: MinimalClientSpec, raw: boolean, env: NodeJS.ProcessEnv, dir: string): Promise<CeilingRun> {
  const file = path.join(dir, 'ceiling.json');
  fs.writeFileSync(file, JSON.stringify({ ...spec, raw }));
  sink.reset();
  const out = JSON.parse(await runNode(['--import', 'tsx', 'scripts/bench/smtp-client.ts', file], env)) as { sent: number; failed: number };
  const receipts = sink.receipts;
  if (receipts.length !== out.sent) throw new Error(`the client says ${out.sent} sent, the sink received ${receipts.length}`);
  const bytes = receipts.length > 0 ? Math.round(receipts.reduce((a, r) => a + r.bytes, 0) / receipts.length) : 0;
  return { rate: rateOf(receipts), received: receipts.length, failed: out.failed, bytes };
}
