'use strict';
/**
 * Diagnostics for `npm run bench:email -- --profile`, preloaded into the email worker with
 * `node --require`: counts the statements the process sends to PostgreSQL (every kysely query,
 * BEGIN and COMMIT go through pg's Client#query) and, at exit, writes the counts by statement shape
 * to the file named by BENCH_QUERY_COUNT_FILE. Plain JavaScript: it runs inside the compiled engine
 * without a TypeScript loader. It changes nothing the engine does.
 */
const fs = require('node:fs');
const pg = require('pg');

const out = process.env.BENCH_QUERY_COUNT_FILE;
if (out) {
  const counts = new Map();
  const original = pg.Client.prototype.query;
  pg.Client.prototype.query = function countedQuery(config, ...rest) {
    const text = typeof config === 'string' ? config : config && typeof config.text === 'string' ? config.text : '';
    const shape = text.replace(/\s+/g, ' ').trim().slice(0, 140);
    counts.set(shape, (counts.get(shape) || 0) + 1);
    return original.call(this, config, ...rest);
  };
  process.on('exit', () => {
    const rows = [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([sql, n]) => ({ sql, n }));
    fs.writeFileSync(out, JSON.stringify(rows));
  });
}
