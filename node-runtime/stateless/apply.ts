// Applies a bundle's NodeConfig to the running (live) system: the files autoinstall's settings
// stage would persist (install/settings.ts settingsFiles, the same function) are written into
// the live root instead of /config, network files first, and the running system is told:
// systemd-networkd reloads (so a static address in the bundle takes effect before anything else
// talks to the network), the kernel takes the host name, and the services whose files changed
// are restarted if they run. A stateless node keeps nothing: the next boot starts from the image.

import { chmodSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HvError } from '../../common/index.ts';
import type { NodeConfig } from '../config/index.ts';
import { checkImageSettings, readImageFiles, type SettingFile, settingsFiles } from '../install/settings.ts';
import { resolveInRoot } from '../persist.ts';
import { found, writeFileAtomic } from '../store/index.ts';

/** What acts on the running system; absent when the root is not the running system (tests). */
export interface LiveActions {
  run(cmd: string, args: string[]): Promise<void>;
  /** The kernel's host name (/proc/sys/kernel/hostname). */
  setHostname(name: string): void;
}

export interface ApplyResult {
  /** Node paths written, in order. */
  files: string[];
  /** What was done to the running system, in order (`networkctl reload`, `hostname NAME`, ...). */
  actions: string[];
}

/**
 * Makes systemd-networkd read its .network files again: `networkctl reload`, which needs D-Bus;
 * an image without it (the test profile has none) restarts the service through systemd's own
 * socket instead (systemctl as root needs no bus).
 */
export async function reloadNetworkd(live: LiveActions): Promise<void> {
  try {
    await live.run('networkctl', ['reload']);
  } catch {
    await live.run('systemctl', ['try-restart', 'systemd-networkd.service']);
  }
}

const isNetworkFile = (p: string) => p.startsWith('/etc/systemd/network/') || p === '/etc/resolv.conf';

/** Services to restart (if they run) when one of their files changed. */
const SERVICES: Array<[RegExp, string]> = [
  [/^\/etc\/ssh\//, 'ssh.service'],
  [/^\/etc\/rsyslog\.d\//, 'rsyslog.service'],
  [/^\/etc\/systemd\/timesyncd\.conf$/, 'systemd-timesyncd.service'],
  [/^\/etc\/collectd\//, 'collectd.service'],
  [/^\/etc\/iscsi\//, 'iscsid.service'],
];

/** The settings files of `config` for the image at `root`, network files first; refuses before any write. */
export function planApply(config: NodeConfig, root: string): SettingFile[] {
  const image = readImageFiles(root);
  const problems = checkImageSettings(config, image);
  const first = problems.errors[0];
  if (first) throw new HvError(first.message, { exitCode: 65, ...(first.hint ? { hint: first.hint } : {}) });
  const files = settingsFiles(config, image);
  return [...files.filter((f) => isNetworkFile(f.path)), ...files.filter((f) => !isNetworkFile(f.path))];
}

/** The host path of node path `path` under root, its parent folders made (links resolved inside root). */
function hostPathFor(root: string, path: string): string {
  const parent = resolveInRoot(root, dirname(path));
  let at = root;
  for (const name of parent.split('/').filter(Boolean)) {
    at = join(at, name);
    const kind = found(at);
    if (kind === 'missing') {
      // one level at a time, mode 0755 whatever the umask; a file in the way is named
      mkdirSync(at, 0o755);
      chmodSync(at, 0o755);
    } else if (kind !== 'directory')
      throw new HvError(`cannot write ${path}: ${at} is a ${kind}, not a folder`);
  }
  return join(root, parent, path.slice(path.lastIndexOf('/') + 1));
}

/**
 * Writes the files of `config` under `root` (network first), telling the running system after
 * the network files and at the end. `log` gets one line per action.
 */
export async function applyConfig(
  config: NodeConfig,
  root: string,
  live: LiveActions | undefined,
  log: (line: string) => void,
): Promise<ApplyResult> {
  const files = planApply(config, root);
  const result: ApplyResult = { files: [], actions: [] };
  const act = async (what: string, fn: () => Promise<void> | void) => {
    if (!live) return;
    try {
      await fn();
      result.actions.push(what);
    } catch (err) {
      // the files are in place; a service that cannot be told now takes them at its next start
      log(`${what} failed: ${(err as Error).message}`);
    }
  };
  const write = (f: SettingFile) => {
    writeFileAtomic(hostPathFor(root, f.path), f.content, f.mode, f.gid);
    result.files.push(f.path);
  };
  const network = files.filter((f) => isNetworkFile(f.path));
  for (const f of network) write(f);
  if (network.some((f) => f.path.startsWith('/etc/systemd/network/')))
    await act('networkctl reload', () => (live ? reloadNetworkd(live) : undefined));
  for (const f of files.filter((x) => !isNetworkFile(x.path))) write(f);
  if (config.hostname) {
    // the kernel takes at most 64 characters: a longer FQDN gives its first label
    const name = config.hostname.length <= 64 ? config.hostname : (config.hostname.split('.')[0] as string);
    await act(`hostname ${name}`, () => live?.setHostname(name));
  }
  const restart = [
    ...new Set(SERVICES.filter(([re]) => result.files.some((p) => re.test(p))).map(([, s]) => s)),
  ];
  for (const unit of restart)
    await act(`systemctl try-restart ${unit}`, () => live?.run('systemctl', ['try-restart', unit]));
  if (result.files.length > 0) log(`applied: ${result.files.join(' ')}`);
  return result;
}
