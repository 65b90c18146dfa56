// hvnode-node: the on-node runtime CLI (bundled to one file for the node's nodejs).

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import {
  dataError,
  dispatch,
  ExitCode,
  HvError,
  type Program,
  runCli,
  runtimeVersion,
} from '../common/index.ts';
import { describeCmdline, parseCmdline } from './config/index.ts';
import { autoinstall } from './install/autoinstall.ts';
import { DISK_ENVIRONMENT_HELP, diskEnvFromEnv } from './install/disks.ts';
import { runTool } from './install/run.ts';
import { confirmBoot, installedBoot, upgrade } from './install/upgrade.ts';
import { mountVolumes } from './install/volumes.ts';
import { activeConsoles, announce, bootMode, readyLine, selftestLine, wantsSelftest } from './ready.ts';
import { readRelease } from './release.ts';

/** --cmdline's value, or /proc/cmdline. */
function readCmdline(given: unknown, where: string): string {
  if (typeof given === 'string') return given;
  try {
    return readFileSync('/proc/cmdline', 'utf8');
  } catch (err) {
    throw new HvError(`cannot read /proc/cmdline: ${(err as Error).message}`, {
      where,
      exitCode: ExitCode.precondition,
      hint: 'give the command line with --cmdline STRING',
    });
  }
}

export const program: Program = {
  prog: 'hvnode-node',
  summary: 'the hvnode runtime on a node',
  version: runtimeVersion(),
  commands: [
    {
      name: 'ready',
      summary: 'print "hvnode: ready VERSION MODE" on every active console',
      help: `Usage: hvnode-node ready [--cmdline STRING] [--stdout]

Run by hvnode-ready.service once the system is up. VERSION is the image's (from
/etc/hvnode-release), MODE is how it booted: live (ISO or USB), pxe, installed. With
hvnode.selftest on the kernel command line, a second line follows:
"hvnode: selftest libvirtd=STATE qemu=VERSION" (the boot tests read it).

  --cmdline STRING  kernel command line to read the boot mode from (default: /proc/cmdline)
  --stdout          print to standard output only`,
      options: { cmdline: { type: 'string' }, stdout: { type: 'boolean' } },
      run: async ({ values }) => {
        const cmdline =
          typeof values.cmdline === 'string' ? values.cmdline : readFileSync('/proc/cmdline', 'utf8');
        const lines = [readyLine(readRelease().version ?? runtimeVersion(), bootMode(cmdline))];
        // an installed node that is up confirms its slot: a trial boot after an upgrade is kept
        const confirmed = await confirmBoot(runTool, diskEnvFromEnv(), cmdline).catch((err: Error) => {
          process.stderr.write(
            `hvnode-node ready: cannot confirm this boot in GRUB's environment: ${err.message}\n`,
          );
          return undefined;
        });
        if (confirmed)
          lines.push(
            `hvnode: ${confirmed.slot} confirmed as the default boot (was ${confirmed.previous || 'unset'})`,
          );
        if (wantsSelftest(cmdline)) lines.push(selftestLine({ run: runQuiet }, cmdline));
        for (const line of lines) {
          const written = values.stdout ? [] : announce(line, activeConsoles());
          // standard output goes to the journal under systemd; it is the only target when no console is writable
          if (values.stdout || written.length === 0 || !process.stdout.isTTY)
            process.stdout.write(`${line}\n`);
        }
        return ExitCode.ok;
      },
    },
    {
      name: 'cmdline',
      summary: 'parse the kernel command line into a NodeConfig',
      help: `Usage: hvnode-node cmdline [--cmdline STRING] [--json]

Reads oVirt Node's kernel arguments (BOOTIF, storage_init, adminpw, management_server, ...)
into a NodeConfig. Unknown arguments are listed and kept for the installed bootloader; a
malformed value of a known argument is an error that names it.

  --cmdline STRING  the command line to read (default: /proc/cmdline)
  --json            print {"config": ..., "unknown": [...], "errors": [{"arg", "message"}]}

Exit status: 0, or 65 when a known argument has a malformed value.`,
      options: { cmdline: { type: 'string' }, json: { type: 'boolean' } },
      run: async ({ values, positionals }) => {
        if (positionals.length > 0) {
          throw dataError(
            `unexpected argument "${positionals[0]}"`,
            'hvnode-node cmdline',
            'give the command line with --cmdline STRING',
          );
        }
        const result = parseCmdline(readCmdline(values.cmdline, 'hvnode-node cmdline'));
        process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : describeCmdline(result));
        for (const e of result.errors) process.stderr.write(`hvnode-node: cmdline: ${e.arg}: ${e.message}\n`);
        return result.errors.length > 0 ? ExitCode.dataError : ExitCode.ok;
      },
    },
    {
      name: 'autoinstall',
      summary: 'install the running image to disk from the kernel command line',
      help: `Usage: hvnode-node autoinstall [--cmdline STRING] [--dry-run] [--json] [--no-reboot]

Installs this node to the disks storage_init names, with the sizes of storage_vol (oVirt
Node's defaults otherwise). The boot disk gets GPT partitions BIOS boot, EFI, Root and
RootBackup; the rest of it and any further HostVG disks hold the volume group HostVG (Swap,
Config for /config, Logging for /var/log, Data); the disks after ";" hold AppVG (Swap2,
Data2). The medium the node booted from is never used.

A disk that holds anything (a partition table, a file system, LVM) is refused unless the
command line says "reinstall" (or "firstboot"); "uninstall" wipes the storage_init disks.

Then the image the node runs (kernel, initramfs, squashfs from the medium it booted from)
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

Exit status: 0 done; 1 a step failed (it is named; run again with "reinstall");
2 a precondition (not root, a disk holds data); 65 bad arguments or sizes that do not fit;
70 a stage not built yet.

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
          cmdline: readCmdline(values.cmdline, 'hvnode-node autoinstall'),
          dryRun: values['dry-run'] === true,
          json: values.json === true,
          reboot: values['no-reboot'] !== true,
        });
      },
    },
    {
      name: 'mount-volumes',
      summary: "mount an installed node's HostVG volumes on /config and /data (at boot)",
      help: `Usage: hvnode-node mount-volumes

Run at boot by hvnode-volumes.service on a node booted from its installed disk: activates the
volume group HostVG (LVM makes the device nodes itself; no wait for udev) and mounts
HostVG/Config on /config and HostVG/Data on /data. A volume group whose disk is not probed yet
is retried for up to 3 minutes.

Exit status: 0 mounted (or already mounted); 1 HostVG or its Config volume cannot be used.`,
      options: {},
      run: async () => {
        await mountVolumes({ run: runTool, log: (l) => process.stdout.write(`${l}\n`) });
        return ExitCode.ok;
      },
    },
    {
      name: 'upgrade',
      summary: 'write a new image to the inactive root, with rollback',
      help: `Usage: hvnode-node upgrade [ISO|URL] [--no-reboot] [--json]

Writes the image of ISO (a file, or an http(s) URL fetched to /data, or to RAM when the Data
volume is not mounted; default: the medium this node booted from) into the root slot the
node is not running from (Root or RootBackup) and tells GRUB to try it once at the next boot.
When the node comes up from it, "hvnode-node ready" makes it the default; a boot that does not
get there leaves the previous slot as the default, and the next boot returns to it. /config
and the rest of HostVG are not touched.

  --no-reboot  do not reboot when the image is written
  --json       print {"from", "to", "version", "esp"}

Exit status: 0 written; 2 no installed node on this machine; 65 ISO missing or not an hvnode ISO.

${DISK_ENVIRONMENT_HELP}`,
      options: { 'no-reboot': { type: 'boolean' }, json: { type: 'boolean' } },
      run: async ({ values, positionals }) => {
        if (positionals.length > 1)
          throw dataError(`unexpected argument "${positionals[1]}"`, 'hvnode-node upgrade', 'give one ISO');
        if (process.getuid?.() !== 0)
          throw new HvError('upgrade needs root', {
            where: 'hvnode-node upgrade',
            exitCode: ExitCode.precondition,
            hint: 'run it as root',
          });
        const cmdline = readFileSync('/proc/cmdline', 'utf8');
        const boot = installedBoot(cmdline);
        const log = (l: string) => (values.json ? process.stderr : process.stdout).write(`${l}\n`);
        const result = await upgrade({
          run: runTool,
          env: diskEnvFromEnv(),
          log,
          iso: positionals[0],
          runningSlot: boot?.slot,
          liveMedium: process.env.HVNODE_LIVE_MEDIUM || undefined,
        });
        if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
        if (values['no-reboot'] !== true) await runTool('systemctl', ['reboot']);
        return ExitCode.ok;
      },
    },
    { name: 'stateless', summary: "fetch and apply this node's configuration bundle" },
    { name: 'upload', summary: "upload this node's /config to the config server" },
  ],
};

function runQuiet(cmd: string, args: string[]): { status: number | null; stdout: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
  return { status: r.error ? null : r.status, stdout: r.stdout ?? '' };
}

await runCli(program.prog, (argv) => dispatch(program, argv));
