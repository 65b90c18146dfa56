import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import test from 'ava';
import { HvError } from '../../common/index.ts';
import { openStore, type RetiredCopy } from '../../node-runtime/store/index.ts';
import { REPO, requireTools } from '../helpers/env.ts';

function scratch(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Every name below dir (relative), sorted. */
function walk(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => {
      const rel = `${prefix}/${e.name}`;
      return e.isDirectory() ? [rel, ...walk(join(dir, e.name), rel)] : [rel];
    })
    .sort();
}

/** Whether a shell script could take the lock right now (flock -n). */
function shellCanLock(lockFile: string): boolean {
  try {
    execFileSync('flock', ['-n', lockFile, 'true']);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('the lock is flock(1)’s: a shell script waits for an update, and an update for a script', async (t) => {
  requireTools(t, { flock: 'util-linux' });
  const root = scratch(t);
  const store = openStore(root, { lockTimeoutSeconds: 1 });
  await store.update(() => {
    t.false(shellCanLock(store.lockFile), 'held during the update');
  });
  t.true(shellCanLock(store.lockFile), 'released after it');
  t.is(statSync(store.lockFile).mode & 0o777, 0o600);

  // A script holds it: the update waits, and gives up after its timeout with a clear error.
  const script = spawn('flock', ['-x', store.lockFile, 'sh', '-c', 'echo held; sleep 3'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => script.kill());
  await new Promise((r) => script.stdout.once('data', r));
  const started = Date.now();
  const err = await t.throwsAsync(
    store.update(() => t.fail('ran without the lock')),
    {
      instanceOf: HvError,
    },
  );
  t.regex(
    err?.message ?? '',
    /cannot lock the config store .*\.hvnode\.lock\): another process has held it for more than 1 s/,
  );
  t.regex(err?.hint ?? '', /fuser -v .*\.hvnode\.lock/);
  t.true(Date.now() - started >= 900);
  // With a longer wait it goes through once the script is done.
  const patient = openStore(root, { lockTimeoutSeconds: 10 });
  t.is(await patient.update(() => 'done'), 'done');
  t.not(script.exitCode, null, 'only after the script ended');
});

test('the lock of a process that dies (SIGKILL) is free again', async (t) => {
  requireTools(t, { flock: 'util-linux' });
  const root = scratch(t);
  writeFileSync(
    join(root, 'holder.mts'),
    `import { openStore } from '${REPO}/node-runtime/store/index.ts';
await openStore(process.argv[2]).update(async () => {
  process.stdout.write('inside\\n');
  await new Promise(() => setInterval(() => {}, 1000));
});`,
  );
  const config = join(root, 'config');
  mkdirSync(config);
  const holder = spawn(process.execPath, ['--import=tsx', join(root, 'holder.mts'), config], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => holder.kill('SIGKILL'));
  await new Promise((resolve, reject) => {
    holder.stdout.once('data', resolve);
    holder.once('exit', (code) => reject(new Error(`the holder exited (${code}) before taking the lock`)));
  });
  const store = openStore(config, { lockTimeoutSeconds: 10 });
  t.false(shellCanLock(store.lockFile), 'the other process holds it');
  holder.kill('SIGKILL');
  const started = Date.now();
  await store.update(() => undefined);
  t.true(Date.now() - started < 5000, 'no wait for a timeout: the dead holder’s lock went with it');
});

test('an update waits for another one, whose temporaries its recovery does not touch', async (t) => {
  const root = scratch(t);
  const a = openStore(root);
  const b = openStore(root);
  let release = () => {};
  const inFlight = join(root, '.hosts.hvnode-new');
  let entered: () => void = () => {};
  const inside = new Promise<void>((r) => {
    entered = r;
  });
  const first = a.update(async (tx) => {
    writeFileSync(inFlight, 'being written');
    entered();
    await new Promise<void>((r) => {
      release = r;
    });
    writeFileSync(join(root, 'hosts'), readFileSync(inFlight));
    rmSync(inFlight);
    tx.setFiles([...tx.files, '/hosts']);
  });
  await inside;
  let secondDone = false;
  const second = b.update((tx) => {
    secondDone = true;
    tx.setFiles([...tx.files, '/motd']);
  });
  await sleep(300);
  t.false(secondDone, 'the second update waits for the first');
  t.true(existsSync(inFlight), "the first update's temporary is left alone");
  release();
  await Promise.all([first, second]);
  t.deepEqual(a.listFiles(), ['/hosts', '/motd'], 'both entries are listed');
});

test('updates nested in one call chain are refused rather than waiting for themselves', async (t) => {
  const store = openStore(scratch(t));
  await t.throwsAsync(
    store.update(() => store.update(() => undefined)),
    { message: /locked already by this call chain/ },
  );
  t.is(await store.update(() => 1), 1, 'and the lock is released after the refusal');
});

test('a missing or unwritable store is named in the error', async (t) => {
  const root = join(scratch(t), 'not-mounted');
  const err = await t.throwsAsync(
    openStore(root).update(() => undefined),
    { instanceOf: HvError },
  );
  t.regex(
    err?.message ?? '',
    /cannot lock the config store .*not-mounted \(.*not-mounted\/\.hvnode\.lock\): ENOENT/,
  );
});

test('storeFiles: files first, listed unless a persisted directory holds them; bad paths write nothing', async (t) => {
  const root = scratch(t);
  const store = openStore(root);
  writeFileSync(join(root, 'files'), '/etc/ssh\n');
  mkdirSync(join(root, 'etc/ssh'), { recursive: true });
  const file = (path: string) => ({ path, content: `${path}\n`, mode: 0o640 });
  t.deepEqual(await store.storeFiles([file('/etc/hostname'), file('/etc/ssh/sshd_config.d/x.conf')]), [
    '/etc/hostname',
    '/etc/ssh/sshd_config.d/x.conf',
  ]);
  t.deepEqual(store.listFiles(), ['/etc/hostname', '/etc/ssh']);
  t.is(readFileSync(join(root, 'etc/ssh/sshd_config.d/x.conf'), 'utf8'), '/etc/ssh/sshd_config.d/x.conf\n');
  t.is(statSync(join(root, 'etc/hostname')).mode & 0o777, 0o640);
  t.is(statSync(join(root, 'files')).mode & 0o777, 0o644);
  for (const [bad, why] of [
    ['/files', /the name is the store's own/],
    ['/.hvnode.lock', /the name is the store's own/],
    ['/etc/.hosts.hvnode-new', /the name is the store's own/],
    ['etc/x', /not an absolute, normalized path/],
    ['/etc/motd', /the file is given twice/],
  ] as const) {
    await t.throwsAsync(store.storeFiles([file('/etc/motd'), file(bad)]), {
      instanceOf: HvError,
      message: why,
    });
  }
  t.false(existsSync(join(root, 'etc/motd')), 'nothing written');
  t.deepEqual(store.listFiles(), ['/etc/hostname', '/etc/ssh']);
});

test('recovery finishes a cut-off replacement, clears unfinished writes, and tells persist what it retires', async (t) => {
  const root = scratch(t);
  const tree: Record<string, string | null> = {
    files: '/etc/d\n/etc/e\n/etc/f\n/etc/hostname\n/etc/keep\n',
    '.files.hvnode-new': '/etc/half\n',
    'etc/hostname': 'stored\n',
    'etc/.hostname.hvnode-new': 'a settings write cut off before its rename',
    // cut between the two renames of a directory replacement: the new copy wins
    'etc/.d.hvnode-old/f': 'old',
    'etc/.d.hvnode-new/f': 'new',
    // cut after the first rename, before the new copy was complete: the old one comes back
    'etc/.f.hvnode-old/f': 'old',
    // done, but the old copy not deleted yet
    'etc/e/f': 'new',
    'etc/.e.hvnode-old/f': 'old',
    'etc/.gone.hvnode-del/f': 'x',
    'etc/keep/.user.hvnode-new': 'the admin’s file inside a persisted directory',
  };
  for (const [rel, content] of Object.entries(tree)) {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    if (content !== null) writeFileSync(join(root, rel), content);
  }
  const retired: (RetiredCopy & { listed: readonly string[] })[] = [];
  const store = openStore(root, {
    retire: async (copy, listed) => {
      t.true(existsSync(copy.temp), `${copy.temp} still there when retired`);
      retired.push({ ...copy, listed });
    },
  });
  await store.recover();
  t.deepEqual(walk(root), [
    '/.hvnode.lock',
    '/etc',
    '/etc/d',
    '/etc/d/f',
    '/etc/e',
    '/etc/e/f',
    '/etc/f',
    '/etc/f/f',
    '/etc/hostname',
    '/etc/keep',
    '/etc/keep/.user.hvnode-new',
    '/files',
  ]);
  t.is(readFileSync(join(root, 'etc/d/f'), 'utf8'), 'new');
  t.is(readFileSync(join(root, 'etc/f/f'), 'utf8'), 'old');
  t.is(readFileSync(join(root, 'etc/hostname'), 'utf8'), 'stored\n');
  t.deepEqual(retired.map((r) => [r.path, r.kind, r.temp.slice(root.length)]).sort(), [
    ['/etc/d', 'old', '/etc/.d.hvnode-old'],
    ['/etc/e', 'old', '/etc/.e.hvnode-old'],
    ['/etc/gone', 'del', '/etc/.gone.hvnode-del'],
  ]);
  t.deepEqual(retired[0]?.listed, ['/etc/d', '/etc/e', '/etc/f', '/etc/hostname', '/etc/keep']);
});
