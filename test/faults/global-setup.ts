import fs from 'node:fs';
import path from 'node:path';
import defaultSetup from '../support/global-setup';
import { FIGURES_DIR } from './harness/figures';

/** The default suite's setup, and a clean slate for this run's figure rows. */
export default async function globalSetup(): Promise<void> {
  await defaultSetup();
  fs.mkdirSync(FIGURES_DIR, { recursive: true });
  for (const file of fs.readdirSync(FIGURES_DIR)) {
    if (file.startsWith('row-') || file === 'logs') fs.rmSync(path.join(FIGURES_DIR, file), { recursive: true });
  }
}
