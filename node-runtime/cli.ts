// hvnode-node: the on-node runtime CLI (bundled to one file for the node's nodejs).

import {
  dataError,
  dispatch,
  ExitCode,
  formatDiagnostic,
  HvError,
  type Program,
  runCli,
  runSync,
  runtimeVersion,
} from '../common/index.ts';
import { cmdlineFromOption, describeCmdline } from './config/index.ts';
import { autoinstall } from './install/autoinstall.ts';
import { DISK_ENVIRONMENT_HELP, diskEnvFromEnv } from './install/disks.ts';
import { runTool } from './install/run.ts';
import { checkSource, confirmBoot, installedBoot, upgrade } from './install/upgrade.ts';
import { mountVolumes } from './install/volumes.ts';
import {
  bootMode,
  consoleInstallerFile,
  criticalChainLine,
  parseCriticalChain,
  readyLine,
  recordConsoleDecision,
  sayOnConsoles,
  selftestLine,
  wantsSelftest,
} from './ready.ts';
import { readRelease } from './release.ts';
import { statelessCommand, uploadCommand } from './stateless/commands.ts';

/** The chains the ready line waits for: the node's services, and the ready unit's own start. */
const READY_CHAINS = ['hvnode-up.target', 'hvnode-ready.service'] as const;

/** This program's own file (the bundle on a node: /usr/lib/hvnode/hvnode-node.mjs). */
const SELF = () => process.argv[1] ?? '/usr/bin/hvnode-node';

export const program: Program = {
  prog: 'hvnode-node',
  summary: 'the hvnode runtime on a node',
  examples: ['hvnode-node cmdline --json', 'hvnode-node autoinstall --dry-run', 'hvnode-node upgrade --help'],
  version: runtimeVersion(),
  commands: [
    {
      name: 'ready',
      summary: 'print "hvnode: ready VERSION MODE" on every active console',
      args: [],
      examples: [
        'hvnode-node ready --stdout',
        "hvnode-node ready --cmdline 'root=live:CDLABEL=HVNODE hvnode.selftest' --stdout",
      ],
      exitStatus: [[0, 'printed (a boot that cannot be confirmed in GRUB is a warning)']],
      help: `Usage: hvnode-node ready [--after UNIT] [--cmdline STRING] [--stdout]

Run by hvnode-ready.service. VERSION is the image's (from /etc/hvnode-release), MODE is
how it booted: live (ISO or USB), pxe, installed. It also records whether the consoles offer
the installer before their login prompt (/run/hvnode/console-installer, read by the getty
drop-ins' gate): on the live image booted without autoinstall arguments. With hvnode.selftest on the kernel
command line, a second line follows:
"hvnode: selftest libvirtd=STATE qemu=VERSION mem_used_mib=N probe_mib=P hostname=H slot=S"
(the boot tests and the bench read it; N is MemTotal - MemAvailable, as free counts "used";
P is what this Node.js process itself holds of it: anonymous memory and page tables).

  --after UNIT      start UNIT and wait for it before the line is said (the unit starts
                    early and waits for hvnode-up.target, which is ordered after the node's
                    services: the runtime's cold start runs beside theirs, not after them)
  --cmdline STRING  kernel command line to read the boot mode from (default: /proc/cmdline)
  --stdout          print to standard output only (and leave the consoles' installer offer,
                    /run/hvnode/console-installer, as it is)`,
      options: { after: { type: 'string' }, cmdline: { type: 'string' }, stdout: { type: 'boolean' } },
      run: async ({ values }) => {
        const cmdline = cmdlineFromOption(values.cmdline, 'hvnode-node ready');
        const say = (line: string) => sayOnConsoles(line, values.stdout === true);
        const version = readRelease().version ?? runtimeVersion();
        const ready = readyLine(version, bootMode(cmdline));
        if (!values.stdout)
          try {
            recordConsoleDecision(consoleInstallerFile(), cmdline, version);
          } catch (err) {
            process.stderr.write(
              `hvnode-node ready: cannot record the consoles' installer offer in ${consoleInstallerFile()}: ${(err as Error).message} (the consoles show the login prompt)\n`,
            );
          }
        if (typeof values.after === 'string') {
          // no deadline of its own: the unit has none either, and "ready" is not said before the services are
          const started = runSync('systemctl', ['start', values.after], 24 * 3600_000);
          if (started.status !== 0)
            process.stderr.write(
              `hvnode-node ready: systemctl start ${values.after} failed (${started.stderr.trim() || `exit ${started.status}`}); saying ready anyway\n`,
            );
        }
        say(ready);
        // an installed node that is up confirms its slot: a trial boot after an upgrade is kept
        const confirmed = await confirmBoot(runTool, diskEnvFromEnv(), cmdline).catch((err: Error) => {
          process.stderr.write(
            `hvnode-node ready: cannot confirm this boot in GRUB's environment: ${err.message}\n`,
          );
          return undefined;
        });
        if (confirmed)
          say(
            `hvnode: ${confirmed.slot} confirmed as the default boot (was ${confirmed.previous || 'unset'})`,
          );
        if (wantsSelftest(cmdline)) {
          say(selftestLine({ run: runSync }, cmdline));
          // the critical chain is known once the boot has finished, after this unit: a transient
          // unit waits for that and prints it (a failure to start it is no failure of ready)
          runSync('systemd-run', [
            '--no-block',
            '--collect',
            '--unit=hvnode-critical-chain',
            SELF(),
            'critical-chain',
          ]);
        }
        return ExitCode.ok;
      },
    },
    {
      name: 'critical-chain',
      summary: "wait for the boot to finish, then print the ready line's critical chains on every console",
      args: [],
      examples: ['hvnode-node critical-chain --stdout', 'hvnode-node critical-chain --unit libvirtd.service'],
      exitStatus: [
        [0, 'printed'],
        [1, 'systemd-analyze failed (its message is printed)'],
      ],
      help: `Usage: hvnode-node critical-chain [--stdout] [--unit UNIT]...

Waits (up to 5 minutes) until systemd says the boot has finished, then prints one line per
UNIT: "hvnode: critical-chain UNIT@Ts top: A+Xs B+Ys C+Zs": when UNIT became active and the
three units of its critical chain (systemd-analyze critical-chain) that took longest. By
default the two chains the ready line waits for: hvnode-up.target's (the node's services) and
hvnode-ready.service's own (the runtime's start). "hvnode-node ready" starts it by itself with
hvnode.selftest (the boot bench reads the lines).

  --unit UNIT  a unit whose chain is printed (repeatable)
  --stdout     print to standard output only`,
      options: { unit: { type: 'string', multiple: true }, stdout: { type: 'boolean' } },
      run: async ({ values }) => {
        const units = Array.isArray(values.unit) ? values.unit.map(String) : [...READY_CHAINS];
        for (const unit of units)
          if (!/^[\w@.:-]+$/.test(unit))
            throw dataError(
              `--unit: "${unit}" is not a unit name`,
              'hvnode-node critical-chain',
              'e.g. hvnode-ready.service',
            );
        await runTool('systemctl', ['is-system-running', '--wait'], {
          signal: AbortSignal.timeout(300_000),
        }).catch(
          () => undefined, // "degraded" exits non-zero: the boot has finished all the same
        );
        for (const unit of units) {
          const out = await runTool('systemd-analyze', ['critical-chain', '--no-pager', unit]);
          sayOnConsoles(criticalChainLine(parseCriticalChain(out)), values.stdout === true);
        }
        return ExitCode.ok;
      },
    },
    {
      name: 'cmdline',
      summary: 'parse the kernel command line into a NodeConfig',
      args: [],
      examples: [
        'hvnode-node cmdline',
        "hvnode-node cmdline --cmdline 'BOOTIF=52:54:00:12:34:56 storage_init=/dev/sda' --json",
      ],
      exitStatus: [
        [0, 'parsed'],
        [65, 'a known argument has a malformed value'],
      ],
      help: `Usage: hvnode-node cmdline [--cmdline STRING] [--json]

Reads oVirt Node's kernel arguments (BOOTIF, storage_init, adminpw, management_server, ...)
into a NodeConfig. Unknown arguments are listed and kept for the installed bootloader; a
malformed value of a known argument is an error that names it.

  --cmdline STRING  the command line to read (default: /proc/cmdline)
  --json            print {"config": ..., "kernel": {...}, "unknown": [...],
                    "errors": [{"severity", "message", "arg", "hint"}]} (arg: the argument as written)`,
      options: { cmdline: { type: 'string' }, json: { type: 'boolean' } },
      run: async ({ values, positionals }) => {
        if (positionals.length > 0) {
          throw dataError(
            `unexpected argument "${positionals[0]}"`,
            'hvnode-node cmdline',
            'give the command line with --cmdline STRING',
          );
        }
        const result = cmdlineFromOption(values.cmdline, 'hvnode-node cmdline');
        process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : describeCmdline(result));
        // each error once, at its argument: `hvnode-node cmdline: vlan=5000: error: expected …`
        for (const e of result.errors) process.stderr.write(`hvnode-node cmdline: ${formatDiagnostic(e)}\n`);
        return result.errors.length > 0 ? ExitCode.dataError : ExitCode.ok;
      },
    },
    {
      name: 'autoinstall',
      summary: 'install the running image to disk from the kernel command line',
      args: [],
      examples: [
        'hvnode-node autoinstall --dry-run',
        "hvnode-node autoinstall --cmdline 'storage_init=/dev/sda adminpw=$6$...' --no-reboot",
      ],
      exitStatus: [
        [0, 'done'],
        [1, 'a step failed (it is named; run again with "reinstall")'],
        [2, 'a precondition (not root, a disk holds data)'],
        [65, 'bad arguments or sizes that do not fit'],
        [70, 'a stage not built yet'],
      ],
      help: `Usage: hvnode-node autoinstall [--cmdline STRING] [--dry-run] [--json] [--no-reboot]

Installs this node to the disks storage_init names, with the sizes of storage_vol (oVirt
Node's defaults otherwise). The boot disk gets GPT partitions BIOS boot, EFI, Root and
RootBackup; the rest of it and any further HostVG disks hold the volume group HostVG (Swap,
Config for /config, Logging for /var/log, Data); the disks after ";" hold AppVG (Swap2,
Data2). The medium the node booted from is never used.

A disk that holds anything (a partition table, a file system, LVM) is refused unless the
command line says "reinstall" (or "firstboot"); "uninstall" wipes the storage_init disks.

Then the image the node runs (kernel, initramfs and image layers from the medium it booted from)
goes into Root, GRUB into the EFI system partition and the BIOS boot partition (one menu for
BIOS and UEFI boots, with the command line's crashkernel=, console= and unknown arguments),
the settings (hostname, adminpw/rootpw, network, DNS, NTP, ssh, syslog, netconsole, collectd,
kdump, iSCSI) into Config as persisted files; local_boot_trigger is called; it reboots.

"upgrade" (or local_boot) on the command line does what "hvnode-node upgrade" does with the
medium the node booted from, then reboots.

  --cmdline STRING  the kernel command line to read (default: /proc/cmdline)
  --dry-run         print the plan and stop (as root, disks holding data are refused already)
  --json            print {"plan": ..., "stages": {...}}; progress goes to standard error
  --no-reboot       do not reboot at the end

${DISK_ENVIRONMENT_HELP}
  HVNODE_LIVE_MEDIUM    instead of /run/initramfs/live (the image to install)
  HVNODE_GRUB_PAYLOAD   instead of /usr/lib/hvnode/grub (GRUB's images for the disk)
  HVNODE_IMAGE_ROOT     instead of / (the image's /etc/shadow, /etc/passwd, /etc/hvnode-release)`,
      options: {
        cmdline: { type: 'string' },
        'dry-run': { type: 'boolean' },
        json: { type: 'boolean' },
        'no-reboot': { type: 'boolean' },
      },
      run: async ({ values, positionals }) => {
        if (positionals.length > 0)
          throw dataError(
            `unexpected argument "${positionals[0]}"`,
            'hvnode-node autoinstall',
            'give the command line with --cmdline STRING',
          );
        return autoinstall({
          cmdline: cmdlineFromOption(values.cmdline, 'hvnode-node autoinstall'),
          dryRun: values['dry-run'] === true,
          json: values.json === true,
          reboot: values['no-reboot'] !== true,
        });
      },
    },
    {
      name: 'mount-volumes',
      summary: "mount an installed node's HostVG volumes on /config and /data (at boot)",
      args: [],
      examples: ['hvnode-node mount-volumes'],
      exitStatus: [
        [0, 'mounted (or already mounted)'],
        [1, 'HostVG or its Config volume cannot be used'],
      ],
      help: `Usage: hvnode-node mount-volumes

Run at boot by hvnode-volumes.service on a node booted from its installed disk: activates the
volume group HostVG (LVM makes the device nodes itself; no wait for udev) and mounts
HostVG/Config on /config and HostVG/Data on /data. A volume group whose disk is not probed yet
is retried for up to 3 minutes.`,
      options: {},
      run: async () => {
        await mountVolumes({ run: runTool, log: (l) => process.stdout.write(`${l}\n`) });
        return ExitCode.ok;
      },
    },
    {
      name: 'upgrade',
      summary: 'write a new image to the inactive root, with rollback',
      args: ['[ISO]'],
      examples: [
        'hvnode-node upgrade /data/hvnode-0.2.0.iso',
        'hvnode-node upgrade https://boot.example.com/hvnode-0.2.0.iso --sha256 HEX --no-reboot --json',
      ],
      exitStatus: [
        [0, 'written'],
        [2, 'no installed node on this machine, or not root'],
        [65, 'ISO missing or not an hvnode ISO, a URL refused, a checksum missing or wrong'],
      ],
      help: `Usage: hvnode-node upgrade [ISO | URL --sha256 HEX] [--insecure] [--no-reboot] [--json]

Writes the image of ISO (a file, or an https URL downloaded into a private directory under
/data, or in RAM when the Data volume is not mounted, and deleted afterwards; default: the
medium this node booted from) into the root slot the node is not running from (Root or
RootBackup) and tells GRUB to try it once at the next boot.
When the node comes up from it, "hvnode-node ready" makes it the default; a boot that does not
get there leaves the previous slot as the default, and the next boot returns to it. /config
and the rest of HostVG are not touched.

A URL needs the ISO's SHA-256 (--sha256, as "sha256sum ISO" prints it): https proves the
server, the checksum proves the image; a download that does not match is deleted and nothing
is written. Plain http: URLs are refused. (Signed checksum files are planned.)

  --sha256 HEX  the ISO's SHA-256; required with a URL, checked for a file too
  --insecure    accept an http: URL, and a URL without --sha256 (the image is then unchecked)
  --no-reboot   do not reboot when the image is written
  --json        print {"from", "to", "version", "esp"}

${DISK_ENVIRONMENT_HELP}`,
      options: {
        'no-reboot': { type: 'boolean' },
        json: { type: 'boolean' },
        sha256: { type: 'string' },
        insecure: { type: 'boolean' },
      },
      run: async ({ values, positionals }) => {
        if (positionals.length > 1)
          throw dataError(`unexpected argument "${positionals[1]}"`, 'hvnode-node upgrade', 'give one ISO');
        const source = {
          iso: positionals[0],
          sha256: typeof values.sha256 === 'string' ? values.sha256 : undefined,
          insecure: values.insecure === true,
        };
        checkSource(source);
        if (process.getuid?.() !== 0)
          throw new HvError('upgrade needs root', {
            where: 'hvnode-node upgrade',
            exitCode: ExitCode.precondition,
            hint: 'run it as root',
          });
        const boot = installedBoot(cmdlineFromOption(undefined, 'hvnode-node upgrade'));
        const log = (l: string) => (values.json ? process.stderr : process.stdout).write(`${l}\n`);
        const result = await upgrade({
          run: runTool,
          env: diskEnvFromEnv(),
          log,
          ...source,
          runningSlot: boot?.slot,
          liveMedium: process.env.HVNODE_LIVE_MEDIUM || undefined,
        });
        if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
        if (values['no-reboot'] !== true) await runTool('systemctl', ['reboot']);
        return ExitCode.ok;
      },
    },
    statelessCommand,
    uploadCommand,
  ],
};

await runCli(program.prog, (argv) => dispatch(program, argv));
