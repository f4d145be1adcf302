import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

/**
 * The website kit's script, `cf.js`, as the engine serves it: the file's exact bytes (what a
 * Subresource Integrity hash covers), a gzip copy made once, and their strong validators.
 * `npm run build` copies the file next to the compiled module (dist/engine/http/kit/cf.js).
 */
export interface KitScript {
  readonly body: Buffer;
  readonly gzip: Buffer;
  /** Strong ETags (RFC 9110 §8.8.3): one per representation, so the gzip copy has its own. */
  readonly etag: string;
  readonly gzipEtag: string;
  /** `sha384-<base64>` for `<script integrity=…>` (W3C Subresource Integrity). */
  readonly integrity: string;
}

export const KIT_SCRIPT_FILE = path.join(__dirname, 'cf.js');

export function kitScriptFrom(body: Buffer): KitScript {
  const digest = createHash('sha256').update(body).digest('base64url').slice(0, 32);
  return Object.freeze({
    body,
    // Level 9 and no file name or time in the header: the same bytes on every process and restart.
    gzip: zlib.gzipSync(body, { level: 9 }),
    etag: `"${digest}"`,
    gzipEtag: `"${digest}-gz"`,
    integrity: `sha384-${createHash('sha384').update(body).digest('base64')}`,
  });
}

let loaded: KitScript | undefined;

/** Read once per process: the script changes only with the engine's version. */
export function kitScript(): KitScript {
  loaded ??= kitScriptFrom(fs.readFileSync(KIT_SCRIPT_FILE));
  return loaded;
}
