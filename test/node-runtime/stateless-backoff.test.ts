// The retry timing and the discovery of MAC, server and keys (pure parts, injected files).

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { parseCmdline } from '../../node-runtime/config/index.ts';
import {
  backoffCeiling,
  backoffDelay,
  backoffFromEnv,
  configServerUrl,
  DEFAULT_DISCOVER_ENV,
  defaultRouteNic,
  nodeMac,
  searchDomains,
  trustedKeys,
} from '../../node-runtime/stateless/index.ts';

test('full jitter: every delay within [0, min(cap, base·2^n)], the extremes reached, the cap holds for huge n', (t) => {
  const o = { baseMs: 100, capMs: 5000 };
  t.deepEqual(
    [0, 1, 2, 5, 6, 1000].map((n) => backoffCeiling(n, o)),
    [100, 200, 400, 3200, 5000, 5000],
  );
  t.is(
    backoffDelay(3, o, () => 0),
    0,
  );
  t.is(
    backoffDelay(3, o, () => 0.999999),
    800,
  );
  t.is(
    backoffDelay(2000, o, () => 0.999999),
    5000,
  );
  for (let n = 0; n < 12; n++)
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(n, o);
      t.true(Number.isInteger(d) && d >= 0 && d <= backoffCeiling(n, o), `attempt ${n}: ${d}`);
    }
});

test('a storm does not retry in step: 200 nodes at the same attempt spread over the window', (t) => {
  const o = { baseMs: 1000, capMs: 300_000 };
  const delays = Array.from({ length: 200 }, () => backoffDelay(4, o)); // window 0..16 s
  t.true(new Set(delays).size > 150, `${new Set(delays).size} distinct delays`);
  // no one second of the window holds more than a fifth of the nodes
  const perSecond = new Map<number, number>();
  for (const d of delays) perSecond.set(Math.floor(d / 1000), (perSecond.get(Math.floor(d / 1000)) ?? 0) + 1);
  t.true(Math.max(...perSecond.values()) < 40, JSON.stringify([...perSecond]));
  t.true(Math.max(...delays) - Math.min(...delays) > 8000);
});

test('HVNODE_RETRY_BASE_MS / HVNODE_RETRY_CAP_MS; a bad value is named', (t) => {
  t.deepEqual(backoffFromEnv({}), { baseMs: 2000, capMs: 300_000 });
  t.deepEqual(backoffFromEnv({ HVNODE_RETRY_BASE_MS: '50', HVNODE_RETRY_CAP_MS: '400' }), {
    baseMs: 50,
    capMs: 400,
  });
  t.throws(() => backoffFromEnv({ HVNODE_RETRY_BASE_MS: '1s' }), { message: /HVNODE_RETRY_BASE_MS=1s/ });
});

test('MAC: BOOTIF, the BOOTIF NIC, else the default route NIC (lowest metric, up)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-discover-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const table =
    'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n' +
    'eth9\t00000000\t0102A8C0\t0002\t0\t0\t1\t00000000\n' + // not up
    'eth1\t00000000\t0102A8C0\t0003\t0\t0\t200\t00000000\n' +
    'eth0\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n' + // not default
    'eth2\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\n';
  t.is(defaultRouteNic(table), 'eth2');
  for (const [nic, mac] of [
    ['eth2', 'AA:BB:CC:00:11:22'],
    ['ens3', '52:54:00:00:00:03'],
  ] as const) {
    mkdirSync(join(dir, nic));
    writeFileSync(join(dir, nic, 'address'), `${mac}\n`);
  }
  writeFileSync(join(dir, 'route'), table);
  const env = { ...DEFAULT_DISCOVER_ENV, sysNet: dir, procRoute: join(dir, 'route') };
  t.is(nodeMac(parseCmdline('BOOTIF=01-52-54-00-12-34-56').config, env), '52:54:00:12:34:56');
  t.is(nodeMac(parseCmdline('BOOTIF=ens3').config, env), '52:54:00:00:00:03');
  t.is(nodeMac(parseCmdline('').config, env), 'aa:bb:cc:00:11:22');
  t.throws(() => nodeMac(parseCmdline('').config, { ...env, procRoute: join(dir, 'none') }), {
    message: /no default route/,
  });
});

test('server: config_server= (host:port becomes https), else SRV in the search domains; keys: config_key= else the image file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-discover-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'resolv.conf'), 'nameserver 192.0.2.53\nsearch lab.example.com example.com.\n');
  const asked: string[] = [];
  const env = {
    ...DEFAULT_DISCOVER_ENV,
    resolvConf: join(dir, 'resolv.conf'),
    keysFile: join(dir, 'keys'),
    resolveSrv: async (name: string) => {
      asked.push(name);
      if (name.endsWith('.lab.example.com')) throw Object.assign(new Error('x'), { code: 'ENOTFOUND' });
      return [
        { name: 'backup.example.com', port: 9443, priority: 20, weight: 0 },
        { name: 'cfg.example.com.', port: 8443, priority: 10, weight: 5 },
      ];
    },
  };
  t.deepEqual(searchDomains('domain a.example\nsearch b.example c.example.\n'), ['b.example', 'c.example']);
  t.is(
    await configServerUrl(parseCmdline('config_server=cfg.example.com:8443').config, env),
    'https://cfg.example.com:8443',
  );
  t.is(
    await configServerUrl(parseCmdline('config_server=http://10.0.0.1:8080/').config, env),
    'http://10.0.0.1:8080',
  );
  t.is(await configServerUrl(parseCmdline('').config, env), 'https://cfg.example.com:8443');
  t.deepEqual(asked, ['_hvnode-config._tcp.lab.example.com', '_hvnode-config._tcp.example.com']);
  await t.throwsAsync(configServerUrl(parseCmdline('').config, { ...env, resolvConf: join(dir, 'none') }), {
    message: /no config_server= on the command line and no search domain/,
  });
  t.throws(() => trustedKeys(parseCmdline('').config, env), { message: /no key to check the bundle with/ });
  const fp = `sha256:${'a'.repeat(64)}`;
  writeFileSync(join(dir, 'keys'), `# built in\n${fp}\n\n`);
  t.deepEqual(trustedKeys(parseCmdline('').config, env), [fp]);
  t.deepEqual(trustedKeys(parseCmdline(`config_key=sha256:${'b'.repeat(64)}`).config, env), [
    `sha256:${'b'.repeat(64)}`,
  ]);
});
