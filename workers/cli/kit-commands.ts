import type { Command } from 'commander';
import { kitScript } from '../../engine/http/kit/asset';
import type { CommandWiring } from './rules-commands';

/**
 * `consentflow kit sri [--json]`: the Subresource Integrity hash of the `cf.js` this engine serves
 * at `GET /v1/cf.js`, to publish with the `<script integrity=…>` snippet. It changes with every
 * engine version whose script changed; pages pinning the old hash then refuse the new script.
 */
export function registerKitCommands(program: Command, wiring: CommandWiring): Command {
  const kit = program.command('kit').description('the website kit (cf.js) the API serves at /v1/cf.js');
  kit
    .command('sri')
    .description('print the Subresource Integrity hash (sha384) of cf.js, for <script integrity="…" crossorigin="anonymous">')
    .option('--json', 'print JSON: integrity, size in bytes raw and gzipped, ETag')
    .action(
      wiring.run(async (options: { json?: boolean }) => {
        const ctx = wiring.context();
        const script = kitScript();
        ctx.print(
          options.json
            ? JSON.stringify({ integrity: script.integrity, bytes: script.body.length, gzipBytes: script.gzip.length, etag: script.etag })
            : script.integrity,
        );
        return 0;
      }),
    );
  return kit;
}
