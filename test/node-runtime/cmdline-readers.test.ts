// Every part of the runtime that reads the kernel command line reads it through parseCmdline:
// the same tokenizer (quotes as the kernel's next_arg() takes them) and the same flag words. Each
// case here was read differently by a reader that split /proc/cmdline on its own.

import test from 'ava';
import { ExitCode, HvError } from '../../common/index.ts';
import { parseCmdline } from '../../node-runtime/config/index.ts';
import { liveRootDevice } from '../../node-runtime/install/disks.ts';
import { installedBoot } from '../../node-runtime/install/upgrade.ts';
import { isStateless } from '../../node-runtime/persist.ts';
import { bootMode, selftestLine, wantsSelftest } from '../../node-runtime/ready.ts';

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
