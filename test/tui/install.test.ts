// The installer driven through tmux with real keys, onto a sparse 12 GiB loop disk: every screen
// from Welcome to Finished, inline refusals on the screen where the choice is made, and then the
// disk as autoinstall leaves it (GPT, HostVG, the hostname and the admin password hash typed on
// Console password, in Config). A folder stands in for the live medium and another for the
// image's /etc, as in test/node-runtime/install-apply.test.ts. --dry-run: the same screens,
// nothing written.

import { existsSync, mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { ExecutionContext } from 'ava';
import test from 'ava';
import { execa } from 'execa';
import { makeInstalledGrubPayload } from '../../builder/iso/grub.ts';
import { parseWipefs } from '../../node-runtime/install/disks.ts';
import { sha512Crypt } from '../../tui/crypt.ts';
import { cli, requireRoot, requireTools } from '../helpers/env.ts';
import { fakeImageAccounts, fakeLiveMedium } from '../helpers/fake-node.ts';
import { retype, Tmux } from './tmux.ts';

const TOOLS = {
  tmux: 'tmux',
  sfdisk: 'fdisk',
  lvm: 'lvm2',
  'mkfs.ext4': 'e2fsprogs',
  'mkfs.fat': 'dosfstools',
  wipefs: 'util-linux',
  losetup: 'mount',
  debugfs: 'e2fsprogs',
  mcopy: 'mtools',
  'grub-mkimage': 'grub-common',
};
const LVM = ['--config', 'backup { backup=0 archive=0 }'];
const PASSWORD = 'Tui-Secret-42';

interface Machine {
  disk: string;
  env: Record<string, string>;
}

/** A 12 GiB sparse loop disk, 2 GiB of RAM, the live medium and the image's /etc; undone in teardown. */
async function machine(t: ExecutionContext): Promise<Machine> {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-tui-install-'));
  let disk = '';
  t.teardown(async () => {
    if (disk) {
      const devices = [disk, `${disk}p5`].filter((d) => existsSync(d)).join(',');
      await execa('lvm', ['vgchange', '-an', ...LVM, '--devices', devices, 'HostVG'], { reject: false });
      await execa('losetup', ['-d', disk], { reject: false });
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const file = join(dir, 'host.img');
  writeFileSync(file, '');
  truncateSync(file, 12 * 2 ** 30);
  disk = (await execa('losetup', ['--find', '--show', '--partscan', file])).stdout.trim();
  const medium = fakeLiveMedium(dir);
  const etc = join(fakeImageAccounts(join(dir, 'image')), 'etc');
  writeFileSync(join(etc, 'hvnode-release'), 'NAME=hvnode-test\nVERSION=9.8.7\n');
  writeFileSync(join(dir, 'meminfo'), `MemTotal:        ${2048 * 1024} kB\n`);
  // the live system's command line: its console= goes to the installed boot menu
  writeFileSync(join(dir, 'cmdline'), 'BOOT_IMAGE=/vmlinuz0 rd.live.image console=ttyS0\n');
  await makeInstalledGrubPayload(join(dir, 'grub'));
  return {
    disk,
    env: {
      HVNODE_INCLUDE_DISKS: basename(disk),
      HVNODE_MEMINFO: join(dir, 'meminfo'),
      HVNODE_CMDLINE: join(dir, 'cmdline'),
      HVNODE_LIVE_MEDIUM: medium,
      HVNODE_IMAGE_ROOT: join(dir, 'image'),
      HVNODE_GRUB_PAYLOAD: join(dir, 'grub'),
    },
  };
}

/**
 * Welcome → Keyboard → Boot device (the loop disk preselected, the running system's disk
 * refused) → HostVG disks → Storage sizes (a size that does not fit refused there) → Console
 * password (a mismatch refused there) → Confirm, which shows autoinstall's plan.
 */
async function toConfirm(t: ExecutionContext, tmux: Tmux, m: Machine): Promise<string> {
  let s = await tmux.waitFor('Install hvnode 9.8.7');
  t.regex(s, /No installed hvnode was found/);
  await tmux.keys('Enter');
  await tmux.waitFor('Keyboard Layout Selection');
  await tmux.keys('Enter');
  s = await tmux.waitFor('Please select the disk');
  // the loop disk is the one chosen; no disk the running system uses is ever preselected
  t.regex(s, new RegExp(`\\(\\*\\) ${m.disk}\\s`), 'the loop disk is preselected');
  t.notRegex(s, /\(\*\) .*in use/);
  await tmux.keys('Enter');
  s = await tmux.waitFor('select other disks to add');
  await tmux.keys('Tab', 'Enter');
  s = await tmux.waitFor('Root & RootBackup:');
  t.regex(s, /Swap:\s+\[3072/, "oVirt's swap formula for 2 GiB of RAM");
  // Logging larger than the disk: refused on this screen by autoinstall's layout planner
  await tmux.keys('Tab', 'Tab', 'Tab');
  await retype(tmux, '2048', '50000');
  await tmux.keys('Tab', 'Tab', 'Enter');
  s = await tmux.waitFor('does not fit on the chosen disks');
  t.regex(s, /Storage sizes/);
  await tmux.keys('BTab', 'BTab');
  await retype(tmux, '50000', '2048');
  await tmux.keys('Tab', 'Tab', 'Enter');
  await tmux.waitFor('Require a password for local console access');
  await tmux.keys(
    'text:node7.example.com',
    'Tab',
    `text:${PASSWORD}`,
    'Tab',
    `text:${PASSWORD}x`,
    'Tab',
    'Enter',
  );
  s = await tmux.waitFor('the passwords do not match');
  t.regex(s, /Console password/);
  await tmux.keys('BTab', 'BSpace', 'Tab', 'Enter');
  s = await tmux.waitFor(/Nothing has been written yet[\s\S]*HostVG/, 60);
  return s;
}

test.serial('the installer, key by key, installs onto a loop disk what the screens chose', async (t) => {
  requireRoot(t);
  requireTools(t, TOOLS);
  const m = await machine(t);
  const tmux = new Tmux(t);
  const started = Date.now();
  await tmux.start(`node ${cli('hvnode-setup')} --install`, m.env);
  const plan = await toConfirm(t, tmux, m);
  t.regex(plan, new RegExp(m.disk));
  await tmux.keys('Enter');
  const done = await tmux.waitFor(/Finished|Failed/, 300);
  t.log(`Welcome to Finished: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  t.regex(done, /hvnode installation finished successfully/, done);

  // GPT with oVirt's partitions, HostVG's volumes
  const table = JSON.parse((await execa('sfdisk', ['--json', m.disk])).stdout) as {
    partitiontable: { label: string; partitions: { name: string }[] };
  };
  t.is(table.partitiontable.label, 'gpt');
  t.deepEqual(
    table.partitiontable.partitions.map((p) => p.name),
    ['BIOS boot', 'EFI', 'Root', 'RootBackup', 'HostVG'],
  );
  const lvs = JSON.parse(
    (
      await execa(
        'lvm',
        [
          'lvs',
          ...LVM,
          '--devices',
          `${m.disk}p5`,
          '--reportformat',
          'json',
          '--segments',
          '-o',
          'lv_name,vg_name,seg_pe_ranges',
        ],
        { env: { LVM_SUPPRESS_FD_WARNINGS: '1' } },
      )
    ).stdout,
  ) as { report: { seg: { lv_name: string; vg_name: string; seg_pe_ranges: string }[] }[] };
  const segs = lvs.report.flatMap((r) => r.seg);
  t.deepEqual(segs.map((s) => `${s.vg_name}/${s.lv_name}`).sort(), [
    'HostVG/Config',
    'HostVG/Data',
    'HostVG/Logging',
    'HostVG/Swap',
  ]);
  // Config, read at its extents (pe_start 1 MiB, 4 MiB extents): the hostname and the password
  // typed on Console password
  const config = segs.find((s) => s.lv_name === 'Config');
  const [, pv = '', first = '0'] = /^(.+):(\d+)-\d+$/.exec(config?.seg_pe_ranges ?? '') ?? [];
  const at = 2 ** 20 + Number(first) * 4 * 2 ** 20;
  const cat = async (path: string) =>
    (await execa('debugfs', ['-R', `cat ${path}`, `${pv}?offset=${at}`], { reject: false })).stdout;
  t.is(await cat('/etc/hostname'), 'node7.example.com');
  const hash = /^admin:(\$6\$[^$]+\$[^:]+):/m.exec(await cat('/etc/shadow'))?.[1] ?? '';
  const salt = hash.split('$')[2] ?? '';
  t.is(hash, sha512Crypt(PASSWORD, salt), 'the admin hash is of the password typed');

  // Reboot: with the test overrides the host is never rebooted, it is only said
  await tmux.keys('Enter');
  await tmux.waitFor('exit=0');
  t.regex(await tmux.screen(true), /^would reboot \(HVNODE_\* test overrides set\)$/m);
  // started again, the installer sees the install and offers only Reinstall
  const again = new Tmux(t);
  await again.start(`node ${cli('hvnode-setup')} --install`, m.env);
  const welcome = await again.waitFor('hvnode 9.8.7 is installed');
  t.regex(welcome, /Reinstall hvnode 9\.8\.7 \(the disks are wiped\)/);
  t.notRegex(welcome, /\bInstall hvnode/);
});

test.serial(
  '--dry-run: the same screens show the plan; Install prints the NodeConfig and writes nothing',
  async (t) => {
    requireRoot(t);
    requireTools(t, TOOLS);
    const m = await machine(t);
    const tmux = new Tmux(t);
    await tmux.start(`node ${cli('hvnode-setup')} --install --dry-run`, m.env);
    t.regex(await tmux.waitFor('installer (dry run)'), /hvnode 9\.8\.7 installer/);
    await toConfirm(t, tmux, m);
    await tmux.keys('Enter');
    const done = await tmux.waitFor('Dry run finished: nothing was written.');
    t.regex(done, /Reboot/);
    await tmux.keys('Enter');
    await tmux.waitFor('exit=0');
    const out = await tmux.screen(true);
    const line = /^NodeConfig: (\{.*\})$/m.exec(out);
    t.truthy(line, out);
    const config = JSON.parse(line?.[1] ?? '{}');
    t.like(config, {
      hostname: 'node7.example.com',
      storage: { init: { hostVG: [{ path: m.disk }] }, volumes: { logging: 2048, swap: 3072 } },
      boot: { action: 'install' },
    });
    t.regex(config.security.adminPasswordHash, /^\$6\$/);
    t.regex(out, /would reboot/);
    t.regex(out, /autoinstall with the command line: .*storage_init=/);
    const sig = await execa('wipefs', ['--no-act', '--json', m.disk]);
    t.deepEqual(parseWipefs(sig.stdout), [], 'the disk has no signature: nothing was written');
  },
);
