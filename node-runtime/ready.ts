// The node's "ready" announcement: one line, `hvnode: ready <version> <boot mode>`, on every
// active console (screen and serial port), printed by hvnode-ready.service once the system is up.

import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
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

/** `hvnode.selftest` on the kernel command line: the boot tests ask the node to check itself. */
export function wantsSelftest(cmdline: string | CmdlineResult): boolean {
  return readCmdline(cmdline).kernel.selftest === true;
}

export interface SelftestProbe {
  /** Runs a command, returns its exit status and standard output. */
  run: (cmd: string, args: string[]) => { status: number | null; stdout: string };
}

/**
 * One line that says whether the hypervisor works: libvirtd's state as systemd sees it and
 * the version qemu-system-x86_64 reports, e.g. `hvnode: selftest libvirtd=active qemu=7.2.15`.
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
  return `hvnode: selftest libvirtd=${libvirtd.split('\n')[0]} qemu=${version ?? 'missing'} hostname=${host} slot=${slot}`;
}
