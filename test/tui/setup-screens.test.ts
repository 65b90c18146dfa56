// The setup screens driven through tmux: each screen's validation errors, and Apply writing
// through autoinstall's settings code into a throwaway /config store (HVNODE_CONFIG_ROOT), with
// persist's restore putting the files in place in a throwaway root (HVNODE_ROOT), inside a
// private mount namespace.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import test from 'ava';
import { sha512Crypt } from '../../tui/crypt.ts';
import { cli, requireRoot, requireTools } from '../helpers/env.ts';
import { makeEngineCa, startEngine } from '../stand-ins/engine.ts';
import { retype, Tmux } from './tmux.ts';

const UUID = '5e1f0c2a-7b3d-4c55-9a0e-2f6d8b1c4a77';

function machine(t: ExecutionContext) {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-tui-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const root = join(dir, 'root');
  const config = join(dir, 'config');
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(config);
  writeFileSync(
    join(root, 'etc/passwd'),
    'root:x:0:0::/root:/bin/sh\nadmin:x:1000:1000::/home/admin:/bin/sh\n',
  );
  writeFileSync(join(root, 'etc/shadow'), 'root:*:19000:0:99999:7:::\nadmin:!:19000:0:99999:7:::\n');
  writeFileSync(join(root, 'etc/hostname'), 'localhost\n');
  writeFileSync(join(dir, 'cmdline'), 'BOOT_IMAGE=/vmlinuz ro BOOTIF=01-52-54-00-12-34-56\n');
  writeFileSync(join(dir, 'product_uuid'), `${UUID}\n`);
  const env = {
    HVNODE_ROOT: root,
    HVNODE_CONFIG_ROOT: config,
    HVNODE_MOUNTINFO: '/proc/self/mountinfo',
    HVNODE_CMDLINE: join(dir, 'cmdline'),
    HVNODE_DMI_UUID_FILE: join(dir, 'product_uuid'),
  };
  // /config must be a mount point: a bind mount of the folder onto itself, in a namespace
  // that goes away with the program
  const command = `unshare -m --propagation private sh -c 'mount --bind "$HVNODE_CONFIG_ROOT" "$HVNODE_CONFIG_ROOT" && exec node ${cli('hvnode-setup')}'`;
  return { root, config, env, command };
}

/** The setup screens on a throwaway machine, at the Status screen. */
async function started(t: ExecutionContext, dryRun = false) {
  requireRoot(t);
  requireTools(t, { tmux: 'tmux', unshare: 'util-linux' });
  const m = machine(t);
  const tmux = new Tmux(t);
  await tmux.start(dryRun ? m.command.replace(/'$/, " --dry-run'") : m.command, m.env);
  await tmux.waitFor('Running VMs:');
  return { m, tmux };
}

test('Network: bad values are marked on their fields and nothing is stored; good ones are applied and persisted', async (t) => {
  const { m, tmux } = await started(t);
  await tmux.keys('Down', 'Enter');
  await tmux.waitFor('DNS server 1:');
  // hostname, then DNS 1 wrong
  await tmux.keys('text:node7.example.com', 'Tab', 'text:not-an-ip');
  for (let i = 0; i < 9; i++) await tmux.keys('Tab');
  await tmux.keys('Enter');
  let s = await tmux.waitFor('not applied: correct the fields marked !');
  t.regex(s, /! not an IP address/);
  t.false(existsSync(join(m.config, 'etc/hostname')), 'nothing stored');
  // back to DNS 1 and fix it
  for (let i = 0; i < 9; i++) await tmux.keys('BTab');
  for (let i = 0; i < 'not-an-ip'.length; i++) await tmux.keys('BSpace');
  await tmux.keys('text:192.0.2.53');
  for (let i = 0; i < 9; i++) await tmux.keys('Tab');
  await tmux.keys('Enter');
  s = await tmux.waitFor('stored in');
  t.regex(s, /now in place: .*\/etc\/hostname/);
  t.is(readFileSync(join(m.config, 'etc/hostname'), 'utf8'), 'node7.example.com\n');
  t.regex(readFileSync(join(m.config, 'etc/resolv.conf'), 'utf8'), /nameserver 192\.0\.2\.53/);
  t.regex(readFileSync(join(m.config, 'files'), 'utf8'), /\/etc\/hostname/);
  const saved = JSON.parse(readFileSync(join(m.config, 'etc/hvnode/node-config.json'), 'utf8'));
  t.is(saved.hostname, 'node7.example.com');
  t.deepEqual(saved.network.dns, ['192.0.2.53']);
});

test('Logging and Kernel Dump: inline errors; Reset goes back to the saved values; --dry-run stores nothing', async (t) => {
  const { m, tmux } = await started(t, true);
  // Logging: rsyslog port out of range
  await tmux.keys('Down', 'Down', 'Down', 'Enter', 'Tab', 'text:logs.example.com', 'Tab', 'text:70000');
  for (let i = 0; i < 3; i++) await tmux.keys('Tab');
  await tmux.keys('Enter');
  let s = await tmux.waitFor('a port is 1-65535');
  t.regex(s, /not applied/);
  // Reset: the saved (empty) values come back
  await tmux.keys('Tab', 'Enter');
  s = await tmux.waitFor('back to the saved values');
  t.notRegex(s, /70000/);
  // Kernel Dump: NFS without a location
  await tmux.keys('Escape', 'Down', 'Enter', 'Space', 'Tab', 'text:nfs-without-path', 'Tab', 'Enter');
  s = await tmux.waitFor('not an NFS location');
  await tmux.keys('BTab');
  for (let i = 0; i < 'nfs-without-path'.length; i++) await tmux.keys('BSpace');
  await tmux.keys('text:nfs.example.com:/var/crash', 'Tab', 'Enter');
  s = await tmux.waitFor('dry run: nothing is written.');
  t.regex(s, /kdump-tools/);
  t.false(existsSync(join(m.config, 'files')), 'a dry run stores nothing');
});

/** The menu, from row `from` to row `to` (Status 0 … Config server 8), and into the screen. */
async function menu(tmux: Tmux, from: number, to: number, title: string): Promise<void> {
  await tmux.keys(...Array<string>(Math.abs(to - from)).fill(to > from ? 'Down' : 'Up'), 'Enter');
  await tmux.waitFor(title);
}
const saved = (m: ReturnType<typeof machine>) =>
  JSON.parse(readFileSync(join(m.config, 'etc/hvnode/node-config.json'), 'utf8'));

test('Security and Remote Storage: weak or mismatched passwords and a bad iSCSI name inline; Apply stores them', async (t) => {
  const { m, tmux } = await started(t);
  await menu(tmux, 0, 2, 'Enable ssh password authentication');
  // ssh password authentication on; a password too short, then two that differ
  await tmux.keys('Space', 'Tab', 'text:short1', 'Tab', 'text:short1', 'Tab', 'Enter');
  let s = await tmux.waitFor('not applied: correct the fields marked !');
  t.regex(s, /! .*too short/);
  t.false(existsSync(join(m.config, 'etc/shadow')), 'nothing stored');
  await tmux.keys('BTab', 'BTab');
  await retype(tmux, 'short1', 'Blue-Canyon-77');
  await tmux.keys('Tab', 'Tab', 'Enter');
  s = await tmux.waitFor('the passwords do not match');
  await tmux.keys('BTab');
  await retype(tmux, 'short1', 'Blue-Canyon-77');
  await tmux.keys('Tab', 'Enter');
  s = await tmux.waitFor('stored in');
  t.regex(s, /etc\/shadow/);
  const hash = /^admin:(\$6\$[^$]+\$[^:]+):/m.exec(readFileSync(join(m.config, 'etc/shadow'), 'utf8'))?.[1];
  t.is(hash, sha512Crypt('Blue-Canyon-77', hash?.split('$')[2]), 'the hash of the password typed');
  t.regex(
    readFileSync(join(m.config, 'etc/ssh/sshd_config.d/hvnode.conf'), 'utf8'),
    /PasswordAuthentication yes/,
  );
  t.like(saved(m).security, { sshPasswordAuth: true });
  // the password fields are empty again after a Reset (a hash is never shown)
  await tmux.keys('Tab', 'Enter');
  s = await tmux.waitFor('back to the saved values');
  t.regex(s, /Admin password:\s+\[_+\]/);

  await tmux.keys('Escape');
  await menu(tmux, 2, 5, 'iSCSI initiator name');
  await tmux.keys('text:node7', 'Tab', 'Enter');
  s = await tmux.waitFor('not an iSCSI name');
  t.false(existsSync(join(m.config, 'etc/iscsi/initiatorname.iscsi')));
  await tmux.keys('BTab');
  await retype(tmux, 'node7', 'iqn.2026-11.com.example:node7');
  await tmux.keys('Tab', 'Enter');
  await tmux.waitFor('stored in');
  t.is(
    readFileSync(join(m.config, 'etc/iscsi/initiatorname.iscsi'), 'utf8'),
    'InitiatorName=iqn.2026-11.com.example:node7\n',
  );
  t.like(saved(m), {
    iscsi: { initiatorName: 'iqn.2026-11.com.example:node7' },
    security: { sshPasswordAuth: true },
  });
});

test('Monitoring, Engine and Config server: inline errors; the CA fetch from a closed port fails on the screen; Apply stores', async (t) => {
  const { m, tmux } = await started(t);
  // a local port nobody listens on
  const closed = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
  await menu(tmux, 0, 6, 'collectd server:');
  await tmux.keys('text:mon.example.com', 'Tab', 'text:99999', 'Tab', 'Enter');
  let s = await tmux.waitFor('a port is 1-65535');
  t.regex(s, /not applied/);
  await tmux.keys('BTab');
  await retype(tmux, '99999', '25827');
  await tmux.keys('Tab', 'Enter');
  await tmux.waitFor('stored in');
  t.regex(
    readFileSync(join(m.config, 'etc/collectd/collectd.conf.d/hvnode.conf'), 'utf8'),
    /mon\.example\.com.*25827/s,
  );
  t.deepEqual(saved(m).monitoring, { collectd: { server: 'mon.example.com', port: 25827 } });

  await tmux.keys('Escape');
  await menu(tmux, 6, 7, 'Engine server:');
  // a bad host name: Fetch checks the fields first
  await tmux.keys('text:engine!', 'Tab', 'Tab', 'Enter');
  s = await tmux.waitFor('not a host name or IP address');
  await tmux.keys('BTab', 'BTab');
  await retype(tmux, 'engine!', '127.0.0.1');
  await tmux.keys('Tab');
  await retype(tmux, '443', String(closed));
  await tmux.keys('Tab', 'Enter');
  s = await tmux.waitFor('cannot fetch the CA');
  t.regex(s, /connection\s+refused|ECONNREFUSED/);
  // nothing fetched: nothing to accept
  await tmux.keys('Tab', 'Enter');
  await tmux.waitFor('fetch the CA fingerprint first');
  await tmux.keys('Tab', 'Tab', 'Enter');
  // stored, then the registration fails on the screen: nobody listens there
  s = await tmux.waitFor(/register: engine 127\.0\.0\.1: get-version: .*/);
  t.regex(s, /connection\s+refused|ECONNREFUSED/);
  t.like(saved(m).engine, { server: '127.0.0.1', port: closed });
  t.false('fingerprint' in saved(m).engine, 'no fingerprint was accepted');

  await tmux.keys('Escape');
  await menu(tmux, 7, 8, 'Config server URL:');
  await tmux.keys('text:ftp://bundles.example.com', 'Tab', 'Tab', 'Enter');
  s = await tmux.waitFor('not an http(s) URL');
  await tmux.keys('BTab', 'BTab');
  await retype(tmux, 'ftp://bundles.example.com', 'https://bundles.example.com/');
  await tmux.keys('Tab', 'Enter');
  // the upload is tried for real: this machine cannot resolve the name
  s = await tmux.waitFor(/upload: cannot send the upload: .*/);
  t.regex(s, /ENOTFOUND|EAI_AGAIN|getaddrinfo/);
  await tmux.keys('Tab', 'Enter');
  await tmux.waitFor('stored in');
  t.is(saved(m).configServer.url, 'https://bundles.example.com/');
  t.like(saved(m), { monitoring: { collectd: { port: 25827 } }, engine: { server: '127.0.0.1' } });
});

test('Engine: Fetch and Accept the CA, Apply and register with the engine stand-in; once only', async (t) => {
  const { m, tmux } = await started(t);
  const ca = await makeEngineCa(join(m.root, '..', 'engine-ca'));
  const engine = await startEngine({ ca });
  t.teardown(() => engine.close());
  await menu(tmux, 0, 7, 'Engine server:');
  await tmux.keys('text:127.0.0.1', 'Tab');
  await retype(tmux, '443', String(engine.port));
  await tmux.keys('Tab', 'Enter');
  let s = await tmux.waitFor(/CA fingerprint of 127\.0\.0\.1: \S+/);
  // (the line wraps in the pane: its start is enough; the whole value is checked once stored)
  t.true(s.includes(ca.caSha256.slice(0, 23)), `the stand-in's CA: ${ca.caSha256}`);
  await tmux.keys('Tab', 'Enter');
  await tmux.waitFor('accepted: Apply stores it');
  await tmux.keys('Tab', 'Tab', 'Enter');
  s = await tmux.waitFor(/registered with 127\.0\.0\.1 as \S+: pending approval/, 60);
  t.is(engine.registrations.length, 1, 'the engine has the registration');
  t.is(engine.registrations[0]?.uniqueId, UUID, 'the DMI UUID is the unique id');
  t.like(saved(m).engine, { server: '127.0.0.1', port: engine.port, fingerprint: ca.caSha256 });
  t.regex(
    readFileSync(join(m.root, 'root/.ssh/authorized_keys'), 'utf8'),
    /ssh-/,
    "the engine's key for root",
  );
  // Apply again: registered before, nothing sent
  await tmux.keys('Enter');
  await tmux.waitFor(/registered with 127\.0\.0\.1 before/, 60);
  t.is(engine.registrations.length, 1);
});
