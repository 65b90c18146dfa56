// The image's wiring of the TUI: the getty drop-ins' decision (installer or login prompt) from the
// kernel command line, and hvnode-setup as builder/build/bundle.ts bundles it for the node (one
// file, no node_modules), drawing its screens on the terminal types of the consoles it serves.

import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { bundleRuntime } from '../../builder/build/bundle.ts';
import { CONSOLE_GATE, RUNTIME_UNITS } from '../../builder/index.ts';
import { consoleDecision, consoleInstallerFile, recordConsoleDecision } from '../../node-runtime/index.ts';
import { installLock } from '../../tui/system.ts';
import { REPO, requireTools } from '../helpers/env.ts';
import { Tmux } from './tmux.ts';

test('the console shows the installer only on a live boot without autoinstall arguments', (t) => {
  const live = 'BOOT_IMAGE=/isolinux/vmlinuz0 root=live:CDLABEL=hvnode rd.live.image quiet';
  t.deepEqual(consoleDecision(live), {
    installer: true,
    why: 'the live image, booted without autoinstall arguments',
  });
  t.true(consoleDecision(`${live} console=ttyS0,115200`).installer);
  for (const [extra, why] of [
    ['storage_init=/dev/sda', /unattended install/],
    ['ovirt_init', /unattended install/],
    ['storage_init', /unattended install/],
    ['reinstall storage_init=/dev/vda', /unattended install/],
    ['upgrade', /unattended install/],
    ['local_boot', /unattended install/],
    ['hvnode.slot=Root', /installed node \(hvnode\.slot=Root\)/],
    ['config_server=https://cfg.example.com/', /stateless node/],
  ] as const) {
    const d = consoleDecision(`${live} ${extra}`);
    t.false(d.installer, extra);
    t.regex(d.why, why, extra);
  }
  // an installed node's GRUB entry, and a disk-less boot that is not the live image
  t.false(
    consoleDecision('root=live:UUID=1234 rd.live.image hvnode.slot=RootBackup hvnode.esp=AB-CD').installer,
  );
  t.regex(consoleDecision('root=/dev/sda3 ro').why, /not booted from the live image/);
});

test("the getty drop-ins run the consoles' gate before agetty, with no start timeout; the build installs it", (t) => {
  const dropIns = RUNTIME_UNITS.filter((u) => u.includes('.service.d/'));
  t.deepEqual(dropIns, [
    'getty@tty1.service.d/hvnode-installer.conf',
    'serial-getty@.service.d/hvnode-installer.conf',
  ]);
  for (const unit of dropIns) {
    const text = readFileSync(join(REPO, 'node-runtime/units', unit), 'utf8');
    // "-": a failing installer never keeps the login prompt away
    t.regex(
      text,
      new RegExp(`^\\[Service\\]\\nExecStartPre=-${CONSOLE_GATE}\\nTimeoutStartSec=infinity\\n$`, 'm'),
      unit,
    );
  }
  t.is(statSync(GATE).mode & 0o777, 0o755, 'the gate is executable in the checkout too');
});

const GATE = join(REPO, 'tui', 'console-gate.sh');

test('the installer offer is recorded for the live image only; the gate shows it and starts the installer on Enter', async (t) => {
  const run = mkdtempSync(join(tmpdir(), 'hvnode-gate-'));
  t.teardown(() => rmSync(run, { recursive: true, force: true }));
  const offer = consoleInstallerFile({ HVNODE_RUN: run });
  t.is(offer, join(run, 'hvnode', 'console-installer'));
  // a stand-in for hvnode-setup: says how it was started
  const setup = join(run, 'setup');
  writeFileSync(setup, '#!/bin/sh\necho "setup started: $*"\n', { mode: 0o755 });
  const gate = (input: string) =>
    execa(GATE, [], { input, reject: false, env: { HVNODE_RUN: run, HVNODE_SETUP: setup } });

  t.true(recordConsoleDecision(offer, 'root=live:CDLABEL=HVNODE rd.live.image console=ttyS0', '1.2.3'));
  t.is(
    readFileSync(offer, 'utf8'),
    'hvnode 1.2.3: press Enter to start the installer (install or upgrade this machine)\n',
  );
  const pressed = await gate('\n');
  t.is(pressed.exitCode, 0, pressed.stderr);
  t.is(
    pressed.stdout,
    '\nhvnode 1.2.3: press Enter to start the installer (install or upgrade this machine)\nsetup started: --console',
  );
  // the line closed before Enter (a console that goes away): the login prompt follows, no installer
  const closed = await gate('');
  t.is(closed.exitCode, 0);
  t.notRegex(closed.stdout, /setup started/);

  // an installed node: the offer goes, the gate returns at once and silently
  t.false(recordConsoleDecision(offer, 'root=live:UUID=1 rd.live.image hvnode.slot=Root', '1.2.3'));
  t.false(existsSync(offer));
  const installed = await gate('\n');
  t.is(installed.exitCode, 0);
  t.is(installed.stdout + installed.stderr, '');
});

test('the bundled hvnode-setup: --console returns at once on an installed node, and draws the installer on TERM=linux, vt100 and vt220', async (t) => {
  requireTools(t, { tmux: 'tmux' });
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-tui-bundle-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const [setup] = (await bundleRuntime(REPO, join(dir, 'lib'))).filter((f) =>
    f.endsWith('/hvnode-setup.mjs'),
  );
  t.truthy(setup);
  writeFileSync(join(dir, 'installed'), 'root=live:UUID=1234 rd.live.image hvnode.slot=Root\n');
  writeFileSync(join(dir, 'live'), 'root=live:CDLABEL=hvnode rd.live.image console=ttyS0\n');
  // no terminal needed: it decides and leaves (agetty follows)
  const installed = await execa('node', [String(setup), '--console'], {
    cwd: dir,
    reject: false,
    env: { HVNODE_CMDLINE: join(dir, 'installed') },
    stdin: 'ignore',
  });
  t.is(installed.exitCode, 0, installed.stderr);
  t.is(installed.stdout + installed.stderr, '');
  for (const term of ['linux', 'vt100', 'vt220']) {
    const tmux = new Tmux(t);
    // from a folder without node_modules: the bundle is all there is on the node
    await tmux.start(
      `node ${setup} --console --dry-run`,
      {
        TERM: term,
        HVNODE_CMDLINE: join(dir, 'live'),
        HVNODE_INCLUDE_DISKS: '',
      },
      dir,
    );
    const s = await tmux.waitFor('Welcome');
    t.regex(s, /installer \(dry run\)/, term);
    t.regex(s, /Install hvnode/, term);
    t.regex(s, /Tab\/arrows move .* \^C quit/, term);
    await tmux.keys('C-c');
    await tmux.waitFor('exit=130');
  }
});

test('one install at a time across consoles: the second Install is told, a lock of a dead process is taken over', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-tui-lock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const env = { HVNODE_RUN: dir };
  const release = installLock(env);
  const err = t.throws(() => installLock(env));
  t.regex(
    err?.message ?? '',
    new RegExp(`an install is already running \\(process ${process.pid}, on another console\\)`),
  );
  release();
  t.false(existsSync(join(dir, 'hvnode-installer.lock')));
  // a process that is gone (pid 2^22 + 1 is above Linux's pid_max): its lock does not count
  writeFileSync(join(dir, 'hvnode-installer.lock'), `${2 ** 22 + 1}\n`);
  installLock(env)();
  t.false(existsSync(join(dir, 'hvnode-installer.lock')));
});
