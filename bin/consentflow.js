#!/usr/bin/env node
'use strict';
// The installed command. It runs the compiled engine (dist/), built by `npm run build` (and by
// `npm start`, `npm test` and `npm ci` through the prepare script).
let cli;
try {
  cli = require('../dist/workers/cli/main.js');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND') {
    process.stderr.write('consentflow: the engine is not built yet: run `npm run build` first\n');
    process.exit(1);
  }
  throw err;
}
cli.main(process.argv.slice(2), process.env).then(
  (code) => {
    // A failure (or a shutdown that missed its deadline) may leave connections open: exit now.
    if (code !== 0) process.exit(code);
    process.exitCode = code;
    // Everything was closed; if some handle still keeps the loop alive, do not hang the shell.
    setTimeout(() => process.exit(code), 3000).unref();
  },
  (err) => {
    process.stderr.write(`consentflow: ${err && err.stack ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
