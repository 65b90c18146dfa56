// `hvnode-node stateless` against the real config server (spawned, test/config-server/
// http-harness.ts) and the engine stand-in (test/stand-ins/engine.ts): the success path into a
// throwaway root, and every failure mode the node must wait out (a missing bundle, a tampered
// one, a wrong engine CA, an engine that is down or failing) with its console line, its status
// on the server and its retry; a node registered before does not register again.

import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { runStateless } from '../../node-runtime/stateless/run.ts';
import { type Server, startServer } from '../config-server/http-harness.ts';
import { type EngineCa, type EngineStandIn, makeEngineCa, startEngine } from '../stand-ins/engine.ts';
import { lastStatus, makeNode, publish, statusRecorder } from './stateless-fixture.ts';

const MAC = '52:54:00:12:34:56';

let caOnce: Promise<{ ca: EngineCa; other: EngineCa }> | undefined;
/** One CA pair for the file (openssl is slow on a shared machine). */
function cas(dir: string) {
  caOnce ??= (async () => ({
    ca: await makeEngineCa(join(dir, 'ca')),
    other: await makeEngineCa(join(dir, 'other'), 'mitm-ca'),
  }))();
  return caOnce;
}

async function engineFor(t: import('ava').ExecutionContext, dir: string): Promise<EngineStandIn> {
  const { ca, other } = await cas(dir);
  const e = await startEngine({ ca, otherCa: other });
  t.teardown(() => e.close());
  return e;
}

const cmd = (s: Server, serverUrl: string, extra = '') =>
  `stateless BOOTIF=01-${MAC.replace(/:/g, '-')} config_server=${serverUrl} config_key=${s.info.fingerprint} ${extra}`.trim();

test('success: hostname, static network and an overlay file land in the root, statuses in order, registered with the DMI UUID', async (t) => {
  const s = await startServer(t);
  const node = makeNode(t, MAC);
  const engine = await engineFor(t, node.dir);
  await publish(s, MAC);
  const rec = await statusRecorder(t, s.http);
  const r = await runStateless(
    node.options(
      cmd(
        s,
        rec.url,
        `management_server=127.0.0.1:${engine.port} management_server_fingerprint=${engine.ca.caSha256}`,
      ),
    ),
  );
  t.is(readFileSync(join(node.root, 'etc/hostname'), 'utf8'), 'node1.example.com\n');
  t.regex(readFileSync(join(node.root, 'etc/hosts'), 'utf8'), /^127\.0\.1\.1\tnode1\.example\.com node1$/m);
  t.regex(
    readFileSync(join(node.root, 'etc/systemd/network/10-hvnode.network'), 'utf8'),
    /^Address=192\.0\.2\.10\/24$/m,
  );
  t.is(readFileSync(join(node.root, 'etc/motd'), 'utf8'), 'welcome to node1\n');
  // network first: networkd is told before the host name is set
  t.deepEqual(node.actions, ['networkctl reload', 'hostname node1.example.com']);
  t.deepEqual(
    rec.statuses.map((x) => `${x.step} ${x.state}`),
    ['fetch ok', 'verify ok', 'apply ok', 'overlay ok', 'register ok', 'ready ok'],
  );
  t.is(node.said.at(-1), 'hvnode: ready 9.9.9 stateless');
  t.false(node.said.some((l) => l.includes('waiting')));
  t.is(r.attempts, 1);
  t.deepEqual(engine.registrations, [
    {
      name: 'node1.example.com',
      address: '127.0.0.1',
      uniqueId: node.uuid,
      sshUser: 'root',
      sshPort: '22',
      status: 'PendingApproval',
    },
  ]);
  t.deepEqual(engine.commands, ['get-version', 'get-pki-trust', 'get-ssh-trust', 'register']);
  // the engine's key is root's now, and in /config for the next boot
  t.true(readFileSync(join(node.root, 'root/.ssh/authorized_keys'), 'utf8').includes(engine.sshKey));
  t.true(readFileSync(join(node.configRoot, 'root/.ssh/authorized_keys'), 'utf8').includes(engine.sshKey));
  t.regex(
    readFileSync(join(node.configRoot, 'files'), 'utf8'),
    /^\/etc\/hvnode\/engine-registration\.json$/m,
  );
});

test('404 for this MAC: the waiting line, the status on the server, a retry; the bundle appears and it succeeds over HTTPS', async (t) => {
  const s = await startServer(t);
  const node = makeNode(t, MAC);
  let seen: Awaited<ReturnType<typeof lastStatus>>;
  const r = await runStateless(
    node.options(cmd(s, s.https), {}, async (n) => {
      if (n === 2) {
        seen = await lastStatus(s, MAC);
        await publish(s, MAC, { hostname: 'late.example.com' });
      }
    }),
  );
  const waiting = node.said.filter((l) => l.startsWith('hvnode: stateless: waiting: '));
  t.is(waiting.length, 2, node.said.join('\n'));
  t.regex(
    waiting[0] ?? '',
    /^hvnode: stateless: waiting: no bundle for 52:54:00:12:34:56 on https:\/\/127\.0\.0\.1:\d+ \(HTTP 404: no bundle for .*\) \(retry in \d+\.\d s\)$/,
  );
  t.is(seen?.step, 'fetch');
  t.is(seen?.state, 'waiting');
  t.regex(seen?.message ?? '', /no bundle for 52:54:00:12:34:56.*retry in/);
  // backoff: the ceiling doubles (random 0.5 of 1 s, then of 2 s)
  t.deepEqual(node.sleeps, [500, 1000]);
  t.is(r.attempts, 3);
  t.is(readFileSync(join(node.root, 'etc/hostname'), 'utf8'), 'late.example.com\n');
  t.is((await lastStatus(s, MAC))?.step, 'ready');
});

test('a tampered bundle is refused and reported as an error; nothing is written', async (t) => {
  const s = await startServer(t);
  const node = makeNode(t, MAC);
  await publish(s, MAC);
  const dir = join(s.info.data, 'bundles');
  const file = join(dir, readdirSync(dir).find((n) => n.endsWith('.bundle')) as string);
  const bytes = readFileSync(file);
  bytes.writeUInt8((bytes.at(-1) ?? 0) ^ 1, bytes.length - 1);
  writeFileSync(file, bytes);
  const err = await t.throwsAsync(runStateless(node.options(cmd(s, s.http), { maxAttempts: 2 })));
  t.regex(err?.message ?? '', /digest|signature/i);
  t.true(
    node.said.every((l) => /^hvnode: stateless: waiting: .*(digest|signature).*\(retry in/i.test(l)),
    node.said.join('\n'),
  );
  t.is(node.said.length, 2);
  const st = await lastStatus(s, MAC);
  t.is(st?.step, 'verify');
  t.is(st?.state, 'error');
  t.false(existsSync(join(node.root, 'etc/hostname')));
  t.false(existsSync(join(node.root, 'etc/motd')));
});

test('a wrong engine CA fingerprint: waiting, nothing registered; the real CA comes back and it registers (the bundle is not fetched again)', async (t) => {
  const s = await startServer(t);
  const node = makeNode(t, MAC);
  const engine = await engineFor(t, node.dir);
  engine.mode = 'wrong-ca';
  await publish(s, MAC);
  const rec = await statusRecorder(t, s.http);
  await runStateless(
    node.options(
      cmd(
        s,
        rec.url,
        `management_server=127.0.0.1:${engine.port} management_server_fingerprint=${engine.ca.caSha256}`,
      ),
      {},
      (n) => {
        t.is(engine.registrations.length, 0);
        if (n === 2) engine.mode = 'ok';
      },
    ),
  );
  const waiting = node.said.filter((l) => l.includes('waiting'));
  t.is(waiting.length, 2);
  t.regex(
    waiting[0] ?? '',
    /its CA has SHA256 fingerprint [0-9A-F:]{95}, but management_server_fingerprint is /,
  );
  t.deepEqual(
    rec.statuses.map((x) => `${x.step} ${x.state}`),
    [
      'fetch ok',
      'verify ok',
      'apply ok',
      'overlay ok',
      'register error',
      'register error',
      'register ok',
      'ready ok',
    ],
  );
  t.is(engine.registrations.length, 1);
  // no CA was recorded while it was the wrong one
  t.is(
    readFileSync(join(node.configRoot, 'etc/hvnode/engine-ca.pem'), 'utf8').trim(),
    engine.ca.caPem.trim(),
  );
});

test('engine down, then failing with 500: waiting each time; it registers when the engine is back; a second run does not register again', async (t) => {
  const s = await startServer(t);
  const node = makeNode(t, MAC);
  const engine = await engineFor(t, node.dir);
  await publish(s, MAC, {
    hostname: 'node2.example.com',
    engine: { server: '127.0.0.1', port: engine.port },
  });
  await engine.down();
  await runStateless(
    node.options(cmd(s, s.http), {}, async (n) => {
      if (n === 1) {
        await engine.up();
        engine.mode = 'error500';
      }
      if (n === 2) engine.mode = 'ok';
    }),
  );
  const waiting = node.said.filter((l) => l.includes('waiting'));
  t.regex(
    waiting[0] ?? '',
    /^hvnode: stateless: waiting: engine 127\.0\.0\.1: get-version: .*connection refused \(retry in/,
  );
  t.regex(
    waiting[1] ?? '',
    /^hvnode: stateless: waiting: engine 127\.0\.0\.1: get-version: HTTP 500: Internal Server Error/,
  );
  t.is(waiting.length, 2);
  // the management server came from the bundle; no fingerprint: trusted on first use, and said so
  t.true(node.said.some((l) => l.includes('trusting its CA on first use: SHA-256 ' + engine.ca.caSha256)));
  t.is(engine.registrations.length, 1);
  t.is(engine.registrations[0]?.name, 'node2.example.com');

  // the same machine boots again (a fresh root, the same /config): no second registration
  const before = engine.commands.length;
  const again = makeNode(t, MAC);
  const r = await runStateless({
    ...again.options(cmd(s, s.http)),
    configRoot: node.configRoot,
    dmiFile: join(node.dir, 'product_uuid'),
  });
  t.true(r.engine?.already);
  t.is(engine.commands.length, before, 'nothing was asked of the engine');
  t.is(engine.registrations.length, 1);
  t.true(readFileSync(join(again.root, 'root/.ssh/authorized_keys'), 'utf8').includes(engine.sshKey));
});
