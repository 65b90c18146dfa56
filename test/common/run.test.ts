// The one process runner (common/run.ts), with real processes.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import {
  ExitCode,
  HvError,
  missingToolError,
  requireTools,
  run,
  runBytes,
  runSync,
  shellQuote,
  ToolError,
  type ToolLog,
} from '../../common/index.ts';

test('run returns stdout, feeds input, adds to the environment', async (t) => {
  t.is(await run('sh', ['-c', 'printf "%s-%s" "$X" "$(cat)"'], { input: 'in', env: { X: 'x' } }), 'x-in');
  t.is(await run('pwd', [], { cwd: '/tmp' }), '/tmp\n');
});

test('runBytes keeps binary output as it is', async (t) => {
  const bytes = await runBytes('printf', ['\\377\\000\\001']);
  t.deepEqual([...bytes], [0xff, 0, 1]);
});

test('a failure is a ToolError with the exit code and the last output lines', async (t) => {
  const err = await t.throwsAsync(
    run('sh', ['-c', '{ echo one; echo two; echo three; } >&2; exit 3'], {
      what: 'the script',
      where: 'x.ks:4',
    }),
  );
  t.true(err instanceof ToolError);
  t.is(err?.message, 'the script failed (exit code 3); last output:\n    one\n    two\n    three');
  t.is((err as ToolError).where, 'x.ks:4');
  t.is((err as ToolError).exitCode, ExitCode.failure);
  const one = await t.throwsAsync(run('sh', ['-c', 'echo "no such volume" >&2; exit 5']));
  t.is(one?.message, 'sh failed (exit code 5); last output:\n    no such volume');
  t.is((await t.throwsAsync(run('false', [])))?.message, 'false failed (exit code 1)');
  t.is((one as ToolError).detail, 'no such volume');
});

test('a missing tool is exit 2 with the Debian package to install', async (t) => {
  const err = await t.throwsAsync(run('mkfs.fat-not-here', []));
  t.true(err instanceof ToolError);
  t.is((err as HvError).exitCode, ExitCode.precondition);
  t.regex(err?.message ?? '', /required tool "mkfs\.fat-not-here" is not installed/);
  t.is(missingToolError('sfdisk').hint, 'run "npm run setup" (as root), or: apt-get install fdisk');
  t.is(missingToolError('/usr/sbin/lvm').hint, 'run "npm run setup" (as root), or: apt-get install lvm2');
  await t.notThrowsAsync(requireTools(['sh', 'cat']));
  const req = await t.throwsAsync(requireTools(['sh', 'xorriso-not-here']));
  t.is((req as HvError).exitCode, ExitCode.precondition);
});

test('the log gets the command line and the output; its path is the hint of a failure', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-run-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let text = '';
  const log: ToolLog = { path: join(dir, 'build.log'), write: (s) => (text += s) };
  const err = await t.throwsAsync(run('sh', ['-c', 'echo hello; exit 1'], { log }));
  t.is(text, "$ sh -c 'echo hello; exit 1'\nhello\n");
  t.is((err as HvError).hint, `the full output is in ${log.path}`);
});

test('an abort stops the tool (SIGTERM) and says "interrupted"', async (t) => {
  const controller = new AbortController();
  const started = Date.now();
  setTimeout(() => controller.abort(), 200);
  const err = await t.throwsAsync(run('sleep', ['30'], { signal: controller.signal, what: 'sleep 30' }));
  t.is(err?.message, 'sleep 30 interrupted');
  t.true(Date.now() - started < 5000);
});

test('a tool that ignores SIGTERM is killed 5 s later', async (t) => {
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 200);
  const started = Date.now();
  await t.throwsAsync(
    run('sh', ['-c', 'trap "" TERM; sleep 30 & wait; sleep 30'], { signal: controller.signal }),
  );
  const took = Date.now() - started;
  t.true(took >= 5000 && took < 15000, `took ${took} ms`);
});

test('runSync reports the status, stdout and stderr, null when the tool does not run', (t) => {
  t.deepEqual(runSync('sh', ['-c', 'echo hi; echo oops >&2; exit 4']), {
    status: 4,
    stdout: 'hi\n',
    stderr: 'oops\n',
  });
  t.is(runSync('no-such-tool-here', []).status, null);
  t.is(runSync('sleep', ['5'], 100).status, null);
});

test('shellQuote', (t) => {
  t.is(shellQuote('a/b.c'), 'a/b.c');
  t.is(shellQuote("it's"), `'it'\\''s'`);
});
