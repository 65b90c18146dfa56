import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
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
    },
    'root=live:UUID=1 hvnode.slot=RootBackup hvnode.esp=ABCD-1234',
    'node1.example.com',
  );
  t.is(
    line,
    'hvnode: selftest libvirtd=active qemu=7.2.15 mem_used_mib=200 hostname=node1.example.com slot=RootBackup',
  );
  t.deepEqual(calls, ['systemctl is-active libvirtd.service', 'qemu-system-x86_64 --version']);
  t.is(
    selftestLine(
      {
        run: (cmd) =>
          cmd === 'systemctl' ? { status: 3, stdout: 'failed\n' } : { status: null, stdout: '' },
        meminfo: () => '',
      },
      'root=live:CDLABEL=X',
      'hvnode',
    ),
    'hvnode: selftest libvirtd=failed qemu=missing mem_used_mib=unknown hostname=hvnode slot=none',
  );
});
