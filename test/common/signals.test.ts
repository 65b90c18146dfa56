// The one signal handler (common/signals.ts), in a real child process that gets real signals.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';

const COMMON = new URL('../../common/index.ts', import.meta.url).href;

/** A CLI that runs `sleep 30` under withInterrupt and marks its cleanup in DIR/cleaned. */
function program(dir: string): string {
  const file = join(dir, 'prog.mts');
  writeFileSync(
    file,
    `import { writeFileSync } from 'node:fs';
import { run, runCli, withInterrupt } from '${COMMON}';
await runCli('prog', () =>
  withInterrupt(
    async (signal) => {
      try {
        writeFileSync('${dir}/started', '');
        await run('sleep', ['30'], { signal });
        return 0;
      } finally {
        writeFileSync('${dir}/cleaned', '');
      }
    },
    { where: 'prog', onSignal: (sig) => process.stderr.write('stopping on ' + sig + '\\n') },
  ),
);
`,
  );
  return file;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  test(`${sig}: the tool is stopped, the cleanup runs, the error is printed, then the signal is raised again`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'hvnode-signals-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const child = spawn(process.execPath, ['--import=tsx', program(dir)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const closed = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.on('close', (c, s) => resolve([c, s])),
    );
    const started = Date.now();
    while (!existsSync(join(dir, 'started')) && Date.now() - started < 20_000)
      await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 200));
    child.kill(sig);
    const [code, signal] = await closed;
    t.is(signal, sig, `exit code ${code}, stderr: ${stderr}`);
    t.true(existsSync(join(dir, 'cleaned')));
    t.is(stderr, `stopping on ${sig}\nprog: interrupted by ${sig}\n`);
    t.true(Date.now() - started < 20_000, 'sleep 30 was stopped');
  });
}
