// hvnode-setup: the console TUI. `--install`: the installer (started on tty1 and the serial
// console when the live image boots without autoinstall arguments); without it: the setup
// screens (the admin's login shell once installed). `--dry-run`: the real screens and system
// facts, but Install and Apply print the NodeConfig and the actions instead of changing anything.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ExitCode, HvError, runCli, runCommand, runtimeVersion } from '../common/index.ts';
import { consoleDecision, kernelCmdlineFile, readKernelCmdline, systemFacts } from '../node-runtime/index.ts';
import { runInstaller, runSetup } from './ui/run.ts';

/**
 * A serial line has no size (the kernel reports 0x0), and blessed would then draw into one
 * cell: assume 80x24, for this program and, through the terminal's own setting (stty), for the
 * programs that come after it on the line (agetty, the login shell).
 */
function assumeSizeOfSerialLine(): void {
  if (process.stdout.columns && process.stdout.rows) return;
  process.stdout.columns = process.stdout.columns || 80;
  process.stdout.rows = process.stdout.rows || 24;
  try {
    execFileSync('stty', ['cols', String(process.stdout.columns), 'rows', String(process.stdout.rows)], {
      stdio: ['inherit', 'ignore', 'ignore'],
    });
  } catch {
    // no stty: this program still draws at 80x24
  }
}

/**
 * As the admin's login shell this program runs as admin, but Apply, Lock, Restart and Power off
 * change the system: the image's sudoers rule (kickstarts/partials/common-post.ks.hbs) lets
 * admin run exactly this program as root without a password, as oVirt Node's admin could.
 * Returns the exit code of the run as root, or undefined to go on as this user: already root,
 * no sudo or no rule for this program, or a test's HVNODE_* settings.
 */
function runAsRoot(args: string[]): number | undefined {
  const self = process.argv[1];
  if (process.getuid?.() === 0 || !self || !existsSync('/usr/bin/sudo')) return undefined;
  if (Object.keys(process.env).some((k) => k.startsWith('HVNODE_'))) return undefined;
  // -l: is this program allowed without a password? (asks nothing, prints nothing)
  if (spawnSync('sudo', ['-n', '-l', self], { stdio: 'ignore' }).status !== 0) return undefined;
  const r = spawnSync('sudo', ['-n', '--', self, ...args], { stdio: 'inherit' });
  return r.status ?? ExitCode.failure;
}

await runCli('hvnode-setup', (argv) =>
  runCommand(
    'hvnode-setup',
    {
      name: '',
      summary: 'install and configure this node from the console',
      help: `Usage: hvnode-setup [--install | --console] [--dry-run]

Without --install: the setup screens (Status, Network, Security, Logging, Kernel Dump, Remote
Storage, Monitoring, Engine, Config server). Apply writes the settings into /config, as
autoinstall does, and puts them in place; Reset goes back to the saved values.

  --install       the installer: Welcome, Keyboard, Boot device, HostVG disks, Storage sizes,
                  Console password, the plan (nothing is written before Install), Progress
  --console       what the live image's consoles run once Enter is pressed at their prompt
                  (the getty drop-ins' gate): the installer when the kernel command line has no
                  autoinstall arguments (a live boot, not an installed or stateless node), else
                  nothing (exit 0 at once)
  -n, --dry-run   Install and Apply print the NodeConfig and what they would do; nothing is changed

Keys: Tab/arrows move, Enter selects, Space toggles or marks, PgUp/PgDn scroll, Esc goes back,
Ctrl-L draws the screen again, Ctrl-C quits.
Needs a terminal of at least 80x24 (xterm, the Linux console, a serial console: TERM=vt100).

Environment (for tests only): HVNODE_ROOT, HVNODE_CONFIG_ROOT, HVNODE_MOUNTINFO, HVNODE_CMDLINE,
HVNODE_SYSFS, HVNODE_DEV, HVNODE_MEMINFO, HVNODE_INCLUDE_DISKS, HVNODE_LIVE_MEDIUM,
HVNODE_GRUB_PAYLOAD, HVNODE_IMAGE_ROOT, as hvnode-node and persist read them; HVNODE_RUN (instead
of /run, for the install lock). With any HVNODE_* set, Reboot only says it would reboot.`,
      options: {
        install: { type: 'boolean' },
        console: { type: 'boolean' },
        'dry-run': { type: 'boolean', short: 'n' },
      },
      examples: ['hvnode-setup', 'hvnode-setup --install', 'hvnode-setup --install --dry-run'],
      run: async ({ values }) => {
        if (values.console) {
          if (!consoleDecision(readKernelCmdline(kernelCmdlineFile(), 'hvnode-setup --console')).installer)
            return ExitCode.ok;
        }
        const asRoot = runAsRoot(argv);
        if (asRoot !== undefined) return asRoot;
        if (!process.stdin.isTTY || !process.stdout.isTTY)
          throw new HvError('hvnode-setup needs a terminal', {
            exitCode: ExitCode.precondition,
            hint: 'run it on the console, in an ssh session with a terminal (ssh -t), or in tmux',
          });
        assumeSizeOfSerialLine();
        const cols = process.stdout.columns;
        const rows = process.stdout.rows;
        if (cols < 80 || rows < 24)
          throw new HvError(`the terminal is ${cols}x${rows}; hvnode-setup needs at least 80x24`, {
            exitCode: ExitCode.precondition,
            hint: 'enlarge the window, or set the size with "stty cols 80 rows 24"',
          });
        const transcript: string[] = [];
        const opts = {
          facts: systemFacts(process.env),
          env: process.env,
          dryRun: values['dry-run'] === true,
          version: runtimeVersion(),
          transcript,
        };
        const code = values.install || values.console ? await runInstaller(opts) : await runSetup(opts);
        for (const l of transcript) process.stdout.write(`${l}\n`);
        return code;
      },
    },
    argv,
  ),
);
