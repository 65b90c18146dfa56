// Every part of the runtime that reads the kernel command line reads it through parseCmdline:
// the same tokenizer (quotes as the kernel's next_arg() takes them) and the same flag words. Each
// case here was read differently by a reader that split /proc/cmdline on its own.

import test from 'ava';
import { ExitCode, HvError } from '../../common/index.ts';
import { parseCmdline } from '../../node-runtime/config/index.ts';
import { liveRootDevice } from '../../node-runtime/install/disks.ts';
import { installedBoot } from '../../node-runtime/install/upgrade.ts';
import { isStateless } from '../../node-runtime/persist.ts';
import {
  bootMode,
  criticalChainLine,
  memUsedMiB,
  parseCriticalChain,
  parseSpan,
  probeMiB,
  selftestLine,
  wantsSelftest,
} from '../../node-runtime/ready.ts';

test('stateless: the same flag words as every other flag, ovirt_stateless too, the later one wins', (t) => {
  for (const on of [
    'stateless',
    'stateless=1',
    'stateless=YES',
    'stateless=on',
    'ovirt_stateless',
    '"stateless"',
  ])
    t.true(isStateless(`quiet ${on}`), on);
  for (const off of [
    'stateless=n',
    'stateless=OFF',
    'stateless=False',
    'ovirt_stateless=0',
    'stateless ovirt_stateless=no',
    'statelessness notstateless',
    '',
  ])
    t.false(isStateless(off), off);
  t.true(isStateless('stateless=0 ovirt_stateless'));
  // the parsed result is taken as it is, and says the same
  const parsed = parseCmdline('ovirt_stateless');
  t.is(isStateless(parsed), parsed.config.boot?.stateless === true);
});

test('stateless=garbage is an argument error (exit 65), not "stateless"', (t) => {
  const err = t.throws(() => isStateless('quiet stateless=garbage'), { instanceOf: HvError });
  t.is(err?.exitCode, ExitCode.dataError);
  t.deepEqual(
    (err as HvError).diagnostics.map((d) => [d.arg, d.message]),
    [['stateless=garbage', 'expected stateless (or stateless=1) to turn it on, stateless=0 to turn it off']],
  );
  // an error in an argument persist does not read does not stop it
  t.false(isStateless('vlan=5000'));
});

test('root=, hvnode.slot= and hvnode.esp= quoted as the kernel allows are read whole', (t) => {
  const quoted = 'BOOT_IMAGE=/vmlinuz0 root="live:LABEL=My Disk" rd.live.image';
  t.is(bootMode(quoted), 'live');
  t.is(liveRootDevice(quoted), '/dev/disk/by-label/My\\x20Disk');
  t.is(liveRootDevice('"root=live:CDLABEL=HV NODE"'), '/dev/disk/by-label/HV\\x20NODE');
  // the last root= is the kernel's
  t.is(liveRootDevice('root=live:CDLABEL=A root=/dev/sda1'), undefined);
  t.is(bootMode('root=live:CDLABEL=A root=/dev/sda1'), 'installed');

  const installed = 'root=live:UUID=1 "hvnode.slot=RootBackup" hvnode.esp="ABCD-1234"';
  t.deepEqual(installedBoot(installed), { slot: 'RootBackup', esp: 'ABCD-1234' });
  t.is(bootMode(installed), 'installed');
  t.is(
    selftestLine({ run: () => ({ status: 0, stdout: '' }) }, installed, 'n')
      .split(' ')
      .at(-1),
    'slot=RootBackup',
  );
  // not a slot: not an installed boot, and an error of that argument
  t.is(installedBoot('hvnode.slot=Other hvnode.esp=ABCD-1234'), undefined);
  t.deepEqual(
    parseCmdline('hvnode.slot=Other').errors.map((e) => e.arg),
    ['hvnode.slot=Other'],
  );
});

test('hvnode.selftest takes the flag words of every flag', (t) => {
  for (const on of ['hvnode.selftest', 'hvnode.selftest=1', 'hvnode.selftest=true', 'hvnode.selftest=Yes'])
    t.true(wantsSelftest(on), on);
  for (const off of ['hvnode.selftest=0', 'hvnode.selftest=off', 'hvnode.selftestx', 'hvnode.selftest=maybe'])
    t.false(wantsSelftest(off), off);
});

test("the boot's own arguments are kept for the bootloader, not reported as unknown", (t) => {
  const r = parseCmdline('root=live:CDLABEL=X hvnode.slot=Root hvnode.esp=AB-12 hvnode.selftest quiet');
  t.deepEqual(r.kernel, { root: 'live:CDLABEL=X', slot: 'Root', esp: 'AB-12', selftest: true });
  t.deepEqual(r.unknown, ['quiet']);
  t.deepEqual(r.config.bootloaderArgs, [
    'root=live:CDLABEL=X',
    'hvnode.slot=Root',
    'hvnode.esp=AB-12',
    'hvnode.selftest',
    'quiet',
  ]);
  t.deepEqual(r.errors, []);
});

test('the selftest line says the memory in use as free counts it (total - available)', (t) => {
  const meminfo = 'MemTotal:        2030000 kB\nMemFree:          900000 kB\nMemAvailable:    1780000 kB\n';
  t.is(memUsedMiB(meminfo), 244);
  t.is(memUsedMiB('MemTotal: 1 kB\n'), undefined, 'no MemAvailable: unknown, not a number');
  const line = selftestLine({ run: () => ({ status: 1, stdout: '' }), meminfo: () => meminfo }, '', 'n1');
  // and what the probe (this Node.js process, when not told otherwise) holds of it itself
  t.regex(line, / mem_used_mib=244 probe_mib=\d+ hostname=n1 slot=none$/);
  const own = Number(/probe_mib=(\d+)/.exec(line)?.[1]);
  t.true(own > 0 && own < 1024, `this process's own anonymous memory: ${own} MiB`);
  t.is(probeMiB('RssAnon:\t   20480 kB\nVmPTE:\t    1024 kB\n'), 21);
  t.is(probeMiB('Name:\tnode\n'), undefined, 'no RssAnon: unknown');
  const unreadable = selftestLine(
    {
      run: () => ({ status: 1, stdout: '' }),
      meminfo: () => {
        throw new Error('ENOENT');
      },
    },
    '',
    'n1',
  );
  t.regex(unreadable, / mem_used_mib=unknown /);
});

test('the critical chain: when the ready unit came up and the three slowest units on its chain', (t) => {
  // systemd-analyze critical-chain hvnode-ready.service, as systemd 252 prints it
  const out = [
    'The time when unit became active or started is printed after the "@" character.',
    'The time the unit took to start is printed after the "+" character.',
    '',
    'hvnode-ready.service @31.203s +5.702s',
    '└─libvirtd.service @27.001s +4.100s',
    '  └─network.target @26.9s',
    '    └─systemd-networkd.service @25.7s +1.2s',
    '      └─systemd-udevd.service @1min 2.5s +850ms',
    '        └─basic.target @20s',
  ].join('\n');
  const units = parseCriticalChain(out);
  t.deepEqual(
    units.map((u) => u.unit),
    [
      'hvnode-ready.service',
      'libvirtd.service',
      'network.target',
      'systemd-networkd.service',
      'systemd-udevd.service',
      'basic.target',
    ],
  );
  t.is(units[4]?.at, 62.5);
  t.is(units[4]?.took, 0.85);
  t.is(
    criticalChainLine(units),
    'hvnode: critical-chain hvnode-ready.service@31.203s top: hvnode-ready.service+5.702s libvirtd.service+4.1s systemd-networkd.service+1.2s',
  );
  t.is(criticalChainLine([]), 'hvnode: critical-chain unknown top: none');
  // as a service prints it: no UTF-8 locale, so the tree is ASCII; the unit asked for has only +time
  const ascii = [
    'hvnode-ready.service +12.612s',
    '`-libvirtd.service @40.1s +3.3s',
    '  `-network.target @39.9s',
    '    `-systemd-networkd.service @30.2s +9.7s',
  ].join('\n');
  t.is(
    criticalChainLine(parseCriticalChain(ascii)),
    'hvnode: critical-chain hvnode-ready.service top: hvnode-ready.service+12.612s systemd-networkd.service+9.7s libvirtd.service+3.3s',
  );
  t.is(parseSpan('2min 3.5s'), 123.5);
  t.is(parseSpan('none'), undefined);
});
