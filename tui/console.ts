// The console's first program: on the live image booted without autoinstall arguments, the
// installer on tty1 and the serial console instead of a login prompt; everywhere else the login
// prompt at once. The getty drop-ins (node-runtime/units/*.d/hvnode-installer.conf) run
// `hvnode-setup --console` before agetty; it decides here, from the kernel command line.

import { readCmdline } from '../node-runtime/index.ts';

export interface ConsoleDecision {
  installer: boolean;
  why: string;
}

/** Whether the console shows the installer for this kernel command line. */
export function consoleDecision(cmdline: string): ConsoleDecision {
  const { config, kernel } = readCmdline(cmdline);
  if (config.storage?.init || config.boot?.action || config.boot?.localBoot)
    return { installer: false, why: 'the command line asks for an unattended install (hvnode-autoinstall)' };
  if (kernel.slot) return { installer: false, why: `an installed node (hvnode.slot=${kernel.slot})` };
  if (config.configServer?.url)
    return { installer: false, why: 'a stateless node: its config comes from the config server' };
  if (!kernel.root?.startsWith('live:')) return { installer: false, why: 'not booted from the live image' };
  return { installer: true, why: 'the live image, booted without autoinstall arguments' };
}
