// End to end, in QEMU, by keys on the serial console: the test ISO booted without autoinstall
// arguments shows the installer on its serial line (a tmux pane is the terminal); the test drives
// it onto a blank virtual disk with a hostname and a password of its own, presses Reboot, and
// boots the disk: the ready line says "installed", the login prompt names the hostname, and admin
// logs in with that password and lands in hvnode-setup's Status screen (the admin's login shell).
// HVNODE_TUI_SCREENS=FILE: the Welcome, Storage sizes and Finished screens are written there.

import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { requireRoot, requireTools } from '../helpers/env.ts';
import { qemuArgs, readyLinesOf, visibleText } from '../helpers/qemu.ts';
import { isoKernel, testIso } from '../helpers/test-iso.ts';
import { Tmux } from '../tui/tmux.ts';

const TOOLS = {
  mmdebstrap: 'mmdebstrap',
  mksquashfs: 'squashfs-tools',
  xorriso: 'xorriso',
  'qemu-system-x86_64': 'qemu-system-x86',
  tmux: 'tmux',
};
const HOSTNAME = 'tui-node.example.com';
const PASSWORD = 'Serial-Tui-42';
/** Under TCG: boot to the first screen, and a disk boot to the ready line. */
const BOOT_SECONDS = 420;
/** A page drawn over the serial line is read once it has stood still this long (Tmux.waitFor). */
const SETTLE_MS = 1000;

/** `s` as a regular expression matching itself. */
const re = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const elapsed = (since: number) => Math.round((Date.now() - since) / 100) / 10;

/** Waits until the serial log (QEMU's copy of the line) matches; the log's tail on failure. */
async function waitForLog(file: string, what: RegExp, seconds: number): Promise<string> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const log = existsSync(file) ? visibleText(readFileSync(file, 'utf8')) : '';
    if (what.test(log)) return log;
    if (Date.now() > deadline)
      throw new Error(
        `the serial log did not show ${what} within ${seconds} s; its end:\n${log.slice(-3000)}`,
      );
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function saveScreen(name: string, screen: string): void {
  const file = process.env.HVNODE_TUI_SCREENS;
  if (file) appendFileSync(file, `--- ${name} (serial console, 80x24) ---\n${screen.trimEnd()}\n\n`);
}

test.serial(
  'e2e: the installer on the serial console installs onto a disk that boots with the hostname and password chosen',
  async (t: ExecutionContext) => {
    requireRoot(t);
    requireTools(t, TOOLS);
    const { iso } = await testIso();
    const base = mkdtempSync('/var/tmp/hvnode-e2e-tui-');
    t.teardown(() => rmSync(base, { recursive: true, force: true }));
    const k = await isoKernel(iso, base);
    // the ISO's own menu entry: the serial console is on it, nothing asks for an unattended install
    t.regex(k.append, /console=ttyS0/);
    t.notRegex(k.append, /storage_init|ovirt_init|upgrade|local_boot|adminpw/);
    const disk = join(base, 'disk.raw');
    writeFileSync(disk, '');
    truncateSync(disk, 10 * 1024 ** 3);
    const diskArgs = ['-drive', `file=${disk},if=virtio,format=raw`];

    // 1. the live ISO, its serial console on the pane: the installer comes instead of a login,
    // once Enter is pressed
    const live = new Tmux(t);
    await live.run([
      'qemu-system-x86_64',
      ...qemuArgs({
        media: ['-cdrom', iso, '-kernel', k.kernel, '-initrd', k.initrd, '-append', k.append, ...diskArgs],
        serialLog: join(base, 'live.log'),
        serialOnStdio: true,
        memoryMiB: 2048,
      }),
    ]);
    // the console offers the installer (the gate: no Node.js process until Enter is pressed)
    let s = await live.waitFor(/^hvnode \S+: press Enter to start the installer/m, BOOT_SECONDS);
    t.notRegex(s, /login: $/m, 'no login prompt while the installer is offered');
    await live.keys('Enter');
    s = await live.waitFor(/Install hvnode \S+/, 120, SETTLE_MS);
    const firstScreen = Date.now();
    saveScreen('Welcome', s);
    const version = /Install hvnode (\S+)/.exec(s)?.[1] ?? '';
    t.regex(s, /No installed hvnode was found/);

    // 2. Welcome → Keyboard → Boot device → HostVG disks → Storage sizes → Console password →
    // Confirm → Install (Tab and Enter only: an escape sequence split on the serial line would
    // read as Esc, which goes back a page)
    await live.keys('Enter');
    await live.waitFor('Keyboard Layout Selection');
    await live.keys('Enter');
    s = await live.waitFor('Please select the disk', 20, SETTLE_MS);
    t.regex(s, /\(\*\) \/dev\/vda\s/, 'the blank virtio disk is preselected');
    await live.keys('Enter');
    await live.waitFor('select other disks to add');
    await live.keys('Tab', 'Enter');
    s = await live.waitFor('Root & RootBackup:', 20, SETTLE_MS);
    saveScreen('Storage sizes', s);
    // the defaults are kept (Swap by oVirt's formula for what the guest's kernel reports as RAM)
    t.regex(s, /Root & RootBackup:\s+\[\d+/);
    await live.keys('Tab', 'Tab', 'Tab', 'Tab', 'Tab', 'Enter');
    await live.waitFor('Require a password for local console access');
    await live.keys(`text:${HOSTNAME}`, 'Tab', `text:${PASSWORD}`, 'Tab', `text:${PASSWORD}`, 'Tab', 'Enter');
    s = await live.waitFor(/Nothing has been written yet[\s\S]*HostVG/, 120, SETTLE_MS);
    t.regex(s, /\/dev\/vda/);
    await live.keys('Enter');
    s = await live.waitFor(/Finished|Failed/, 600);
    t.log(`first screen → Finished: ${elapsed(firstScreen)} s`);
    t.regex(s, /hvnode installation finished successfully/, s);
    saveScreen('Finished', s);
    await live.keys('Enter');
    // -no-reboot: the guest's reboot ends QEMU
    s = await live.waitFor(/^exit=\d+$/m, 180);
    t.log(`first screen → rebooted (QEMU ended by the guest's reboot): ${elapsed(firstScreen)} s`);
    t.regex(s, /^exit=0$/m, s);

    // 3. the disk boots (SeaBIOS): mode installed, the login prompt names the host chosen
    const node = new Tmux(t);
    const bootLog = join(base, 'boot.log');
    await node.run([
      'qemu-system-x86_64',
      ...qemuArgs({ media: diskArgs, serialLog: bootLog, serialOnStdio: true, memoryMiB: 2048 }),
    ]);
    await waitForLog(bootLog, /^hvnode: ready \S+ \S+\r?$/m, BOOT_SECONDS);
    t.log(
      `first screen → hvnode: ready ${version} installed, booted from the disk: ${elapsed(firstScreen)} s`,
    );
    t.deepEqual(readyLinesOf(readFileSync(bootLog, 'utf8')), [`hvnode: ready ${version} installed`]);
    s = await node.waitFor(/login: $/m, 120);
    // /etc/issue names the host in full, agetty's prompt by its first label
    t.regex(s, new RegExp(` ${re(HOSTNAME)} ttyS0$`, 'm'), s);
    t.regex(s, new RegExp(`^${re(HOSTNAME.split('.')[0] ?? '')} login: $`, 'm'), s);

    // 4. admin with the password typed in the installer: the setup TUI is its login shell
    await node.keys('text:admin', 'Enter');
    await node.waitFor('Password:');
    await node.keys(`text:${PASSWORD}`, 'Enter');
    // the password is the one typed, not a temporary one (no change is forced: see editShadow)
    s = await node.waitFor(/setup: \S+|Login incorrect|required to change|Current password:/, 120);
    t.notRegex(s, /Login incorrect|required to change|Current password:/, s);
    t.regex(s, new RegExp(`hvnode ${re(version)} setup: ${re(HOSTNAME)}`), s);
    t.regex(s, /Status/);
    saveScreen('Status after the login', s);
    t.log(`first screen → admin in the Status screen: ${elapsed(firstScreen)} s`);
    // leaving the TUI ends the session: the login prompt again
    await node.keys('Escape');
    await node.waitFor(/login: $/m, 60);
  },
);
