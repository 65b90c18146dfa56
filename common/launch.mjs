// @ts-check
// Starts one of the package's commands from its compiled JavaScript in lib/ (common/compile.mjs).
// In a checkout lib/<name>.meta.json lists what went into lib/<name>.mjs: when one of those
// sources changed since (or the command is not compiled yet), it is compiled again before it runs,
// and when it does not compile the command stops (exit 70): a checkout never runs stale code.
// An installed package has no sources and no .meta.json: lib/ is what npm pack put in.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** @param {keyof typeof import('./compile.mjs').ENTRIES} name  the bin name: lib/<name>.mjs */
export async function launch(name) {
  const inCheckout = existsSync(`${ROOT}lib/${name}.meta.json`) || existsSync(`${ROOT}builder/cli.ts`);
  if (inCheckout) {
    const { compile, errorLines, staleReason } = await import('./compile.mjs');
    const why = staleReason(name);
    if (why !== undefined) {
      const t = Date.now();
      try {
        await compile([name]);
      } catch (e) {
        const lines = errorLines(e).map((l) => `  ${l}\n`);
        process.stderr.write(
          `${name}: lib/${name}.mjs is out of date (${why}) and the sources do not compile:\n${lines.join('')}`,
        );
        process.exit(70);
      }
      if (process.stderr.isTTY)
        process.stderr.write(`${name}: compiled lib/ again (${why}; ${Date.now() - t} ms)\n`);
    }
  } else if (!existsSync(`${ROOT}lib/${name}.mjs`)) {
    process.stderr.write(`${name}: lib/${name}.mjs is missing: this package was packed without compiling\n`);
    process.exit(70);
  }
  if (process.argv.includes('--debug')) process.setSourceMapsEnabled(true);
  await import(`${ROOT}lib/${name}.mjs`);
}
