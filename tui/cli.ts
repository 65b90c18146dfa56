// hvnode-setup: the console TUI. `--install`: the installer (started on tty1 and the serial
// console when the live image boots without autoinstall arguments); without it: the setup
// screens (the admin's login shell once installed). `--dry-run`: the real screens and system
// facts, but Install and Apply print the NodeConfig and the actions instead of changing anything.

import { readFileSync } from 'node:fs';
import { ExitCode, HvError, runCli, runCommand, runtimeVersion } from '../common/index.ts';
import { systemFacts } from '../node-runtime/index.ts';
import { consoleDecision } from './console.ts';
import { runInstaller, runSetup } from './ui/run.ts';

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
  --console       what the live image's consoles run before the login prompt: the installer
                  when the kernel command line has no autoinstall arguments (a live boot, not an
                  installed or stateless node), else nothing (exit 0 at once)
  -n, --dry-run   Install and Apply print the NodeConfig and what they would do; nothing is changed

Keys: Tab/arrows move, Enter selects, Space toggles or marks, PgUp/PgDn scroll, Esc goes back,
Ctrl-C quits.
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
          const cmdline = readFileSync(process.env.HVNODE_CMDLINE || '/proc/cmdline', 'utf8');
          if (!consoleDecision(cmdline).installer) return ExitCode.ok;
        }
        if (!process.stdin.isTTY || !process.stdout.isTTY)
          throw new HvError('hvnode-setup needs a terminal', {
            exitCode: ExitCode.precondition,
            hint: 'run it on the console, in an ssh session with a terminal (ssh -t), or in tmux',
          });
        const cols = process.stdout.columns || 80;
        const rows = process.stdout.rows || 24;
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
