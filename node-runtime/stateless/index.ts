// The stateless node: `hvnode-node stateless` and `hvnode-node upload` (see run.ts, upload.ts).
// The paths the commands read are overridable through the environment, for tests only.

import { writeFileSync } from 'node:fs';
import { type CmdlineResult, readCmdline } from '../config/index.ts';
import { runTool } from '../install/run.ts';
import { activeConsoles, announce } from '../ready.ts';
import type { LiveActions } from './apply.ts';
import { DEFAULT_DISCOVER_ENV, type DiscoverEnv } from './discover.ts';

export { type ApplyResult, applyConfig, type LiveActions, planApply } from './apply.ts';
export * from './backoff.ts';
export * from './discover.ts';
export {
  dryRun,
  engineTarget,
  NODE_KEY_PATH,
  runStateless,
  type StatelessOptions,
  type StatelessResult,
} from './run.ts';
export { captureConfig, ensureNodeKey, NODE_CONFIG_PATH, uploadConfig } from './upload.ts';

export const STATELESS_ENVIRONMENT_HELP = `Environment (for tests only):
  HVNODE_ROOT            the system to configure instead of / (nothing is restarted then)
  HVNODE_CONFIG_ROOT     the config store instead of /config
  HVNODE_CONSOLES        console devices or files, comma-separated (default: the active consoles)
  HVNODE_RETRY_BASE_MS   first retry ceiling (default 2000), HVNODE_RETRY_CAP_MS the largest (300000)
  HVNODE_DMI_UUID_FILE   instead of /sys/class/dmi/id/product_uuid
  HVNODE_SYS_NET, HVNODE_PROC_ROUTE, HVNODE_RESOLV_CONF, HVNODE_CONFIG_KEYS
                         instead of /sys/class/net, /proc/net/route, /etc/resolv.conf,
                         /etc/hvnode/config-keys`;

export interface StatelessPaths {
  root: string;
  configRoot: string;
  dmiFile: string;
  consoles: string[];
  discover: DiscoverEnv;
}

export function statelessPathsFromEnv(env: NodeJS.ProcessEnv = process.env): StatelessPaths {
  return {
    root: env.HVNODE_ROOT || '/',
    configRoot: env.HVNODE_CONFIG_ROOT || '/config',
    dmiFile: env.HVNODE_DMI_UUID_FILE || '/sys/class/dmi/id/product_uuid',
    consoles: env.HVNODE_CONSOLES ? env.HVNODE_CONSOLES.split(',').filter(Boolean) : activeConsoles(),
    discover: {
      ...DEFAULT_DISCOVER_ENV,
      sysNet: env.HVNODE_SYS_NET || DEFAULT_DISCOVER_ENV.sysNet,
      procRoute: env.HVNODE_PROC_ROUTE || DEFAULT_DISCOVER_ENV.procRoute,
      resolvConf: env.HVNODE_RESOLV_CONF || DEFAULT_DISCOVER_ENV.resolvConf,
      keysFile: env.HVNODE_CONFIG_KEYS || DEFAULT_DISCOVER_ENV.keysFile,
    },
  };
}

/** What acts on the running system: only when the root is the running system's. */
export function liveActions(root: string): LiveActions | undefined {
  if (root !== '/') return undefined;
  return {
    run: async (cmd, args) => {
      await runTool(cmd, args);
    },
    setHostname: (name) => writeFileSync('/proc/sys/kernel/hostname', name),
  };
}

/** One line on every console (each written once) and on standard output (the journal). */
export function sayEverywhere(consoles: string[]): (line: string) => void {
  return (line) => {
    announce(line, consoles);
    process.stdout.write(`${line}\n`);
  };
}

/**
 * This boot is stateless: `stateless` (or oVirt's `ovirt_stateless`) is on, or a live boot has
 * `config_server=` (a node that is told where its configuration is needs nothing else).
 */
export function isStatelessBoot(cmdline: string | CmdlineResult, live: boolean): boolean {
  const { config } = readCmdline(cmdline);
  return config.boot?.stateless === true || (live && config.configServer?.url !== undefined);
}
