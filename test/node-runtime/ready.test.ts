import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import {
  activeConsoles,
  announce,
  bootMode,
  formatRelease,
  parseCmdline,
  parseRelease,
  readyLine,
} from '../../node-runtime/index.ts';
import { selftestLine, wantsSelftest } from '../../node-runtime/ready.ts';
import { cli } from '../helpers/env.ts';

test('boot mode from the kernel command line', (t) => {
  t.is(bootMode('BOOT_IMAGE=vmlinuz0 root=live:CDLABEL=HVNODE rd.live.image console=ttyS0'), 'live');
  t.is(bootMode('root=live:LABEL=HVNODE rd.live.image'), 'live');
  t.is(bootMode('root=live:/hvnode-0.1.0.iso rootflags=loop rd.live.image'), 'pxe');
  t.is(bootMode('root=live:http://10.0.0.1/squashfs.img rd.live.image ip=dhcp'), 'pxe');
  t.is(bootMode('root=/dev/mapper/HostVG-Root ro quiet'), 'installed');
  t.is(bootMode('root=UUID=1234 ro'), 'installed');
  t.is(bootMode(''), 'installed');
  t.is(bootMode('xroot=live:CDLABEL=X'), 'installed');
  // GRUB's entries on an installed disk: a live root, marked with its slot
  t.is(bootMode('root=live:UUID=1234 rd.live.image hvnode.slot=Root hvnode.esp=ABCD-1234'), 'installed');
  // read by the one command-line reader: a parsed line is taken as it is, quotes as the kernel's
  t.is(bootMode(parseCmdline('"root=live:CDLABEL=HV NODE" rd.live.image')), 'live');
  t.is(bootMode(parseCmdline('root="live:/hvnode 0.1.iso" rootflags=loop')), 'pxe');
});

test('the ready line', (t) => {
  t.is(readyLine('1.2.3', 'live'), 'hvnode: ready 1.2.3 live');
});

test('active consoles are read from sysfs, deduplicated', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-ready-'));
  writeFileSync(join(dir, 'active'), 'tty0 ttyS0 ttyS0\n');
  t.deepEqual(activeConsoles(join(dir, 'active')), ['/dev/tty0', '/dev/ttyS0']);
  t.deepEqual(activeConsoles(join(dir, 'missing')), []);
});

test('announce writes one line to each console that can be opened, and skips the others', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-ready-'));
  const a = join(dir, 'a');
  writeFileSync(a, '');
  const written = announce('hvnode: ready 1 live', [a, join(dir, 'no', 'such')]);
  t.deepEqual(written, [a]);
  t.is(readFileSync(a, 'utf8'), 'hvnode: ready 1 live\n');
});

test('release file round trip', (t) => {
  const r = { name: 'hvnode', version: '0.1.0', runtimeVersion: '0.2.0' };
  t.deepEqual(parseRelease(formatRelease(r)), r);
  t.deepEqual(parseRelease('NAME="x"\nJUNK\nVERSION=\'2\'\n'), { name: 'x', version: '2' });
});

test('hvnode.selftest asks for a second line with libvirtd state, the QEMU version, the host name and the root slot', (t) => {
  t.true(wantsSelftest('root=live:CDLABEL=X hvnode.selftest quiet'));
  t.true(wantsSelftest('hvnode.selftest=1'));
  t.false(wantsSelftest('hvnode.selftestx'));
  t.false(wantsSelftest('root=live:CDLABEL=X'));
  const calls: string[] = [];
  const line = selftestLine(
    {
      run: (cmd, args) => {
        calls.push([cmd, ...args].join(' '));
        return cmd === 'systemctl'
          ? { status: 0, stdout: 'active\n' }
          : { status: 0, stdout: 'QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u13)\nCopyright\n' };
      },
      meminfo: () => 'MemTotal:        2000000 kB\nMemAvailable:    1795200 kB\n',
      selfStatus: () =>
        'Name:\tnode\nVmRSS:\t   60000 kB\nRssAnon:\t   21504 kB\nRssFile:\t   38000 kB\nVmPTE:\t     512 kB\n',
    },
    'root=live:UUID=1 hvnode.slot=RootBackup hvnode.esp=ABCD-1234',
    'node1.example.com',
  );
  t.is(
    line,
    'hvnode: selftest libvirtd=active qemu=7.2.15 mem_used_mib=200 probe_mib=22 hostname=node1.example.com slot=RootBackup',
  );
  t.deepEqual(calls, ['systemctl is-active libvirtd.service', 'qemu-system-x86_64 --version']);
  t.is(
    selftestLine(
      {
        run: (cmd) =>
          cmd === 'systemctl' ? { status: 3, stdout: 'failed\n' } : { status: null, stdout: '' },
        meminfo: () => '',
        selfStatus: () => 'Name:\tnode\n',
      },
      'root=live:CDLABEL=X',
      'hvnode',
    ),
    'hvnode: selftest libvirtd=failed qemu=missing mem_used_mib=unknown probe_mib=unknown hostname=hvnode slot=none',
  );
});

// hvnode-ready.service starts with the services and waits for hvnode-up.target (ordered after
// them) through systemctl: a stand-in systemctl on PATH logs its calls and when it returned
test('ready --after starts the unit and says the line only once its start job has returned', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-ready-after-'));
  const log = join(dir, 'calls.log');
  const systemctl = join(dir, 'systemctl');
  const fake = (status: number) =>
    writeFileSync(
      systemctl,
      `#!/bin/sh\necho "systemctl $*" >> ${log}\nsleep 1\necho returned >> ${log}\n` +
        (status === 0 ? 'exit 0\n' : `echo "Failed to start $2: Unit $2 not found." >&2\nexit ${status}\n`),
    );
  const ready = () =>
    execa(
      cli('hvnode-node'),
      ['ready', '--after', 'hvnode-up.target', '--stdout', '--cmdline', 'root=live:CDLABEL=X'],
      {
        reject: false,
        env: { PATH: `${dir}:${process.env.PATH}` },
      },
    );
  fake(0);
  chmodSync(systemctl, 0o755);
  const r = await ready();
  t.is(r.exitCode, 0, r.stderr);
  t.regex(r.stdout, /^hvnode: ready \S+ live$/);
  t.is(readFileSync(log, 'utf8'), 'systemctl start hvnode-up.target\nreturned\n');
  // a target that cannot start (an image without it): the node is still said to be ready, with why
  writeFileSync(log, '');
  fake(5);
  const failed = await ready();
  t.is(failed.exitCode, 0);
  t.regex(failed.stdout, /^hvnode: ready \S+ live$/);
  t.regex(
    failed.stderr,
    /systemctl start hvnode-up\.target failed \(Failed to start hvnode-up\.target: Unit hvnode-up\.target not found\.\); saying ready anyway/,
  );
});

test("critical-chain prints the services' chain and the ready unit's own, once the boot has finished", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-chain-'));
  const log = join(dir, 'calls.log');
  // stand-ins: systemctl (is-system-running --wait) and systemd-analyze as systemd 252 prints a chain
  writeFileSync(join(dir, 'systemctl'), `#!/bin/sh\necho "systemctl $*" >> ${log}\n`, { mode: 0o755 });
  writeFileSync(
    join(dir, 'systemd-analyze'),
    `#!/bin/sh\necho "systemd-analyze $*" >> ${log}\nfor u; do :; done\n` +
      'if [ "$u" = hvnode-up.target ]; then printf "%s\\n" "hvnode-up.target @25.011s" "└─libvirtd.service @19.537s +3.210s" "  └─systemd-logind.service @17.604s +1.791s" "    └─basic.target @15.269s"\n' +
      'else printf "%s\\n" "$u +9.912s" "└─local-fs.target @11.286s" "  └─systemd-sysusers.service @9.033s +1.287s"; fi\n',
    { mode: 0o755 },
  );
  const chain = (...args: string[]) =>
    execa(cli('hvnode-node'), ['critical-chain', '--stdout', ...args], {
      reject: false,
      env: { PATH: `${dir}:${process.env.PATH}` },
    });
  const r = await chain();
  t.is(r.exitCode, 0, r.stderr);
  t.is(
    r.stdout,
    'hvnode: critical-chain hvnode-up.target@25.011s top: libvirtd.service+3.21s systemd-logind.service+1.791s\n' +
      'hvnode: critical-chain hvnode-ready.service top: hvnode-ready.service+9.912s systemd-sysusers.service+1.287s',
  );
  t.is(
    readFileSync(log, 'utf8'),
    'systemctl is-system-running --wait\n' +
      'systemd-analyze critical-chain --no-pager hvnode-up.target\n' +
      'systemd-analyze critical-chain --no-pager hvnode-ready.service\n',
  );
  const one = await chain('--unit', 'libvirtd.service');
  t.regex(one.stdout, /^hvnode: critical-chain libvirtd\.service top: /);
  t.notRegex(one.stdout, /hvnode-up/);
  const bad = await chain('--unit', 'x; reboot');
  t.is(bad.exitCode, 65);
  t.regex(bad.stderr, /--unit: "x; reboot" is not a unit name/);
});
