import fs from 'node:fs';
import { Session } from 'node:inspector/promises';

/**
 * A CPU profile of this process over one phase of a bench (node's inspector, the same format as
 * `node --cpu-prof`), for the phases that run in the bench's own process: `--cpu-prof` would cover
 * the whole run, the database fill included.
 */
export async function startInspectorProfile(): Promise<{ stop(file: string): Promise<string> }> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  return {
    async stop(file: string) {
      const { profile } = await session.post('Profiler.stop');
      fs.writeFileSync(file, JSON.stringify(profile));
      session.disconnect();
      return file;
    },
  };
}
