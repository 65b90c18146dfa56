// The node's "ready" announcement: one line, `hvnode: ready <version> <boot mode>`, on every
// active console (screen and serial port), printed by hvnode-ready.service once the system is up.

import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { replaceFile } from '../common/index.ts';
import { type CmdlineResult, readCmdline } from './config/index.ts';

export type BootMode = 'live' | 'pxe' | 'installed';

/** How this system was booted, from its kernel command line. */
export function bootMode(cmdline: string | CmdlineResult): BootMode {
  const { kernel } = readCmdline(cmdline);
  // GRUB's entries on an installed disk mark the root slot they boot
  if (kernel.slot) return 'installed';
  const root = kernel.root ?? '';
  if (!root.startsWith('live:')) return 'installed';
  const source = root.slice('live:'.length);
  // An ISO appended to the initrd (root=live:/name.iso) or a squashfs fetched over the network.
  if (source.startsWith('/') || /^(https?|ftp|nfs|tftp):/.test(source)) return 'pxe';
  return 'live';
}

export interface ConsoleDecision {
  installer: boolean;
  why: string;
}

/**
 * Whether the consoles offer the installer before the login prompt: on the live image booted
 * without autoinstall arguments, not on an installed or stateless node.
 */
export function consoleDecision(cmdline: string | CmdlineResult): ConsoleDecision {
  const { config, kernel } = readCmdline(cmdline);
  if (config.storage?.init || config.boot?.action || config.boot?.localBoot)
    return { installer: false, why: 'the command line asks for an unattended install (hvnode-autoinstall)' };
  if (kernel.slot) return { installer: false, why: `an installed node (hvnode.slot=${kernel.slot})` };
  if (config.configServer?.url)
    return { installer: false, why: 'a stateless node: its config comes from the config server' };
  if (!kernel.root?.startsWith('live:')) return { installer: false, why: 'not booted from the live image' };
  return { installer: true, why: 'the live image, booted without autoinstall arguments' };
}

/**
 * Where `hvnode-node ready` records the decision for the consoles' gate (tui/console-gate.sh, run
 * by the getty drop-ins): present when they offer the installer, holding the line they show.
 */
export function consoleInstallerFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.HVNODE_RUN || '/run', 'hvnode', 'console-installer');
}

/** Records (or clears) the consoles' installer offer; returns whether they make it. */
export function recordConsoleDecision(
  file: string,
  cmdline: string | CmdlineResult,
  version: string,
): boolean {
  const { installer } = consoleDecision(cmdline);
  if (!installer) {
    rmSync(file, { force: true });
    return false;
  }
  mkdirSync(dirname(file), { recursive: true });
  replaceFile(
    file,
    `hvnode ${version}: press Enter to start the installer (install or upgrade this machine)\n`,
  );
  return true;
}

/** MODE `stateless` is said by `hvnode-node stateless` once the node's bundle is applied. */
export function readyLine(version: string, mode: BootMode | 'stateless'): string {
  return `hvnode: ready ${version} ${mode}`;
}

/** Device paths of the active consoles (`tty0 ttyS0` → /dev/tty0, /dev/ttyS0). */
export function activeConsoles(activeFile = '/sys/class/tty/console/active'): string[] {
  try {
    const names = readFileSync(activeFile, 'utf8').trim().split(/\s+/).filter(Boolean);
    return [...new Set(names)].map((n) => `/dev/${n}`);
  } catch {
    return [];
  }
}

/** Writes the line once to each console; returns the ones written. */
export function announce(line: string, consoles: string[]): string[] {
  const written: string[] = [];
  for (const dev of consoles) {
    try {
      const fd = openSync(dev, 'w');
      try {
        writeSync(fd, `${line}\n`);
      } finally {
        closeSync(fd);
      }
      written.push(dev);
    } catch {
      // a console that cannot be opened (no such device) is not an error: the others still get the line
    }
  }
  return written;
}

/**
 * Says a line of the ready unit's: on every active console, and on standard output (the journal
 * under systemd) too when no console took it or when that is not a terminal; with `stdoutOnly`,
 * on standard output alone.
 */
export function sayOnConsoles(line: string, stdoutOnly = false): void {
  const written = stdoutOnly ? [] : announce(line, activeConsoles());
  if (stdoutOnly || written.length === 0 || !process.stdout.isTTY) process.stdout.write(`${line}\n`);
}

/** `hvnode.selftest` on the kernel command line: the boot tests ask the node to check itself. */
export function wantsSelftest(cmdline: string | CmdlineResult): boolean {
  return readCmdline(cmdline).kernel.selftest === true;
}

export interface SelftestProbe {
  /** Runs a command, returns its exit status and standard output. */
  run: (cmd: string, args: string[]) => { status: number | null; stdout: string };
  /** /proc/meminfo's text (default: read it). */
  meminfo?: () => string;
  /** This process's /proc/self/status (default: read it). */
  selfStatus?: () => string;
}

const kibOf = (text: string, key: string) =>
  Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN);

/**
 * What the probe itself adds to "used": its anonymous memory and page tables (RssAnon + VmPTE of
 * /proc/self/status), in MiB. The selftest runs in Node.js (some 20 MiB), where `free` is a
 * small C program: used minus this is what the node uses without its measurer.
 */
export function probeMiB(status: string): number | undefined {
  const kib = kibOf(status, 'RssAnon') + kibOf(status, 'VmPTE');
  return Number.isFinite(kib) ? Math.round(kib / 1024) : undefined;
}

/** Memory in use as `free` (procps 4) counts it: MemTotal - MemAvailable, in MiB; undefined when unknown. */
export function memUsedMiB(meminfo: string): number | undefined {
  const used = (kibOf(meminfo, 'MemTotal') - kibOf(meminfo, 'MemAvailable')) / 1024;
  return Number.isFinite(used) ? Math.round(used) : undefined;
}

/**
 * One line that says whether the hypervisor works: libvirtd's state as systemd sees it, the
 * version qemu-system-x86_64 reports and the memory in use (the services are up by then), e.g.
 * `hvnode: selftest libvirtd=active qemu=7.2.15 mem_used_mib=231 probe_mib=21 hostname=n1 slot=none`
 * (probe_mib: see probeMiB).
 */
export function selftestLine(
  probe: SelftestProbe,
  cmdline: string | CmdlineResult = '',
  host = hostname(),
): string {
  const libvirtd = probe.run('systemctl', ['is-active', 'libvirtd.service']).stdout.trim() || 'unknown';
  const q = probe.run('qemu-system-x86_64', ['--version']);
  const version = q.status === 0 ? /version\s+(\S+)/.exec(q.stdout)?.[1] : undefined;
  const slot = readCmdline(cmdline).kernel.slot ?? 'none';
  const read = (reader: (() => string) | undefined, file: string) => {
    try {
      return (reader ?? (() => readFileSync(file, 'utf8')))();
    } catch {
      return ''; // unknown: said as such
    }
  };
  const mem = memUsedMiB(read(probe.meminfo, '/proc/meminfo')) ?? 'unknown';
  const self = probeMiB(read(probe.selfStatus, '/proc/self/status')) ?? 'unknown';
  return `hvnode: selftest libvirtd=${libvirtd.split('\n')[0]} qemu=${version ?? 'missing'} mem_used_mib=${mem} probe_mib=${self} hostname=${host} slot=${slot}`;
}

/** A unit on systemd-analyze's critical chain: when it became active and how long it took (seconds). */
export interface ChainUnit {
  unit: string;
  at?: number;
  took?: number;
}

/** systemd's spans: "1min 2.345s", "123ms", "5.6s". */
export function parseSpan(text: string): number | undefined {
  const scale: Record<string, number> = { h: 3600, min: 60, s: 1, ms: 1e-3, us: 1e-6 };
  let total = 0;
  let any = false;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(h|min|ms|us|s)\b/g)) {
    total += Number(m[1]) * (scale[m[2] as string] as number);
    any = true;
  }
  return any ? Math.round(total * 1000) / 1000 : undefined;
}

/**
 * The units of `systemd-analyze critical-chain UNIT` output, the asked-for unit first (it has
 * only its +time); the tree is drawn with └─ in a UTF-8 locale, with `- otherwise (a service).
 */
export function parseCriticalChain(text: string): ChainUnit[] {
  const span = String.raw`((?:\d+(?:\.\d+)?(?:h|min|ms|us|s)\b ?)+)`;
  const tree = String.raw`[\s└─│├|\x60-]*`;
  const unit = new RegExp(String.raw`^${tree}([\w@.:\\-]+\.[a-z]+)(?:\s+@${span})?(?:\s*\+${span})?\s*$`);
  const units: ChainUnit[] = [];
  for (const line of text.split('\n')) {
    const m = unit.exec(line);
    if (!m?.[1] || line.startsWith('The time')) continue;
    units.push({
      unit: m[1],
      at: m[2] ? parseSpan(m[2]) : undefined,
      took: m[3] ? parseSpan(m[3]) : undefined,
    });
  }
  return units;
}

/**
 * `hvnode: critical-chain hvnode-ready.service@31.2s top: libvirtd.service+4.1s …`: when the
 * ready unit became active and the `top` units of its critical chain that took longest.
 */
export function criticalChainLine(units: ChainUnit[], top = 3): string {
  const [head] = units;
  const slow = units
    .filter((u) => u.took !== undefined)
    .sort((a, b) => (b.took as number) - (a.took as number))
    .slice(0, top)
    .map((u) => `${u.unit}+${u.took}s`);
  const at = head?.at !== undefined ? `@${head.at}s` : '';
  return `hvnode: critical-chain ${head?.unit ?? 'unknown'}${at} top: ${slow.join(' ') || 'none'}`;
}
