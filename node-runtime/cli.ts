// hvnode-node: the on-node runtime CLI (bundled to one file for the node's nodejs).

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dispatch, type Program } from './cli-kit.ts';
import { describeCmdline, parseCmdline } from './config/index.ts';
import { dataError, ExitCode, HvError, runCli } from './errors.ts';
import { autoinstall } from './install/autoinstall.ts';
import { DISK_ENVIRONMENT_HELP } from './install/disks.ts';
import { activeConsoles, announce, bootMode, readyLine, selftestLine, wantsSelftest } from './ready.ts';
import { readRelease } from './release.ts';
import { runtimeVersion } from './version.ts';

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
        if (wantsSelftest(cmdline)) lines.push(selftestLine({ run: runQuiet }));
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

Built so far: the disks. Installing the image, the bootloader and the settings, and the
reboot, are not built yet: after the disks it says so and exits 70.

  --cmdline STRING  the kernel command line to read (default: /proc/cmdline)
  --dry-run         print the plan and stop (as root, disks holding data are refused already)
  --json            print {"plan": ..., "stages": {...}}; progress goes to standard error
  --no-reboot       do not reboot at the end

Exit status: 0 done; 1 a step failed (it is named; run again with "reinstall");
2 a precondition (not root, a disk holds data); 65 bad arguments or sizes that do not fit;
70 a stage not built yet.

${DISK_ENVIRONMENT_HELP}`,
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
    { name: 'upgrade', summary: 'write a new image to the inactive root, with rollback' },
    { name: 'stateless', summary: "fetch and apply this node's configuration bundle" },
    { name: 'upload', summary: "upload this node's /config to the config server" },
  ],
};

function runQuiet(cmd: string, args: string[]): { status: number | null; stdout: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
  return { status: r.error ? null : r.status, stdout: r.stdout ?? '' };
}

await runCli(program.prog, (argv) => dispatch(program, argv));
