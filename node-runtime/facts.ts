// SystemFacts: what the console TUI shows about this machine (disks with model, bus, serial and
// size; NICs with MAC and address; running VMs; the SSH host key's fingerprint; RAM; the boot
// medium), behind one interface so that screen logic can be tested with a fixed set of facts.
// The real implementation reads sysfs, /dev/disk/by-id (disks.ts), `ip -j addr`, `virsh` and
// /etc/ssh; every test override of autoinstall (HVNODE_SYSFS, HVNODE_DEV, ...) applies.

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { basename, join } from 'node:path';
import { ramMiBFromMeminfo } from './install/autoinstall.ts';
import {
  type BootMedium,
  type Disk,
  type DiskContents,
  diskEnvFromEnv,
  findBootMedium,
  inspectDisk,
  listDisks,
  readText,
} from './install/disks.ts';
import { type Runner, runTool } from './install/run.ts';

export type DiskBusName = 'ata' | 'scsi' | 'usb' | 'nvme' | 'virtio' | 'cciss' | 'other';

export interface DiskFact extends Disk {
  /** Bus from the by-id names (ata-…, usb-…) or the kernel name (nvme…, vd…). */
  bus: DiskBusName;
}

export interface NicFact {
  name: string;
  mac: string;
  /** up, down, or what /sys/class/net/NIC/operstate says. */
  state: string;
  /** IPv4 and IPv6 addresses with their prefix (192.0.2.5/24). */
  addresses: string[];
  driver?: string;
}

export interface SystemFacts {
  hostname(): string;
  disks(): DiskFact[];
  bootMedium(disks: Disk[]): BootMedium;
  /** What a disk holds (needs root: wipefs). */
  diskContents(disk: Disk): Promise<DiskContents>;
  nics(): Promise<NicFact[]>;
  ramMiB(): number;
  /** Names of running libvirt domains; undefined when libvirt does not answer. */
  runningVms(): Promise<string[] | undefined>;
  /** `SHA256:…` of each SSH host public key, as ssh-keygen -l shows it, with its type. */
  sshHostKeys(): { type: string; fingerprint: string }[];
}

/** The bus of a disk, as the installer's Boot device list shows it. */
export function diskBus(d: Disk): DiskBusName {
  for (const bus of ['ata', 'scsi', 'usb', 'nvme'] as const)
    if (d.ids.some((id) => id.startsWith(`${bus}-`))) return bus;
  if (d.name.startsWith('nvme')) return 'nvme';
  if (d.name.startsWith('vd')) return 'virtio';
  if (d.name.startsWith('cciss')) return 'cciss';
  if (d.name.startsWith('sd')) return 'scsi';
  return 'other';
}

/** `SHA256:base64` (no padding) of an OpenSSH public key line's key blob, as ssh-keygen -l. */
export function sshFingerprint(pubKeyLine: string): { type: string; fingerprint: string } | undefined {
  const [type, blob] = pubKeyLine.trim().split(/\s+/);
  if (!type || !blob || !/^[A-Za-z0-9+/]+=*$/.test(blob)) return undefined;
  const digest = createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64');
  return { type, fingerprint: `SHA256:${digest.replace(/=+$/, '')}` };
}

/** `ip -j addr` output → NIC facts (loopback left out). */
export function parseIpAddr(json: string): NicFact[] {
  const links = JSON.parse(json) as {
    ifname: string;
    address?: string;
    operstate?: string;
    link_type?: string;
    addr_info?: { local: string; prefixlen: number; scope?: string }[];
  }[];
  return links
    .filter((l) => l.link_type !== 'loopback')
    .map((l) => ({
      name: l.ifname,
      mac: l.address ?? '',
      state: (l.operstate ?? 'unknown').toLowerCase(),
      addresses: (l.addr_info ?? [])
        .filter((a) => a.scope !== 'link')
        .map((a) => `${a.local}/${a.prefixlen}`),
    }));
}

/** The real machine (with the HVNODE_* test overrides of the environment). */
export function systemFacts(env: NodeJS.ProcessEnv = process.env, run: Runner = runTool): SystemFacts {
  const diskEnv = diskEnvFromEnv(env);
  const root = env.HVNODE_ROOT || '/';
  return {
    hostname: () => readText(join(root, 'etc/hostname')) || osHostname(),
    disks: () => listDisks(diskEnv).map((d) => ({ ...d, bus: diskBus(d) })),
    bootMedium: (disks) => findBootMedium(diskEnv, disks),
    diskContents: (disk) => inspectDisk(run, disk),
    nics: async () => {
      try {
        const nics = parseIpAddr(await run('ip', ['-j', 'addr']));
        for (const n of nics) {
          try {
            n.driver = basename(readlinkSync(join(diskEnv.sysfs, 'class/net', n.name, 'device/driver')));
          } catch {
            // a virtual NIC has no driver link
          }
        }
        return nics;
      } catch {
        return sysfsNics(diskEnv.sysfs);
      }
    },
    ramMiB: () => ramMiBFromMeminfo(readFileSync(env.HVNODE_MEMINFO || '/proc/meminfo', 'utf8')),
    runningVms: async () => {
      try {
        const out = await run('virsh', ['--connect', 'qemu:///system', 'list', '--name', '--state-running']);
        return out.split('\n').filter((l) => l.trim() !== '');
      } catch {
        return undefined;
      }
    },
    sshHostKeys: () => {
      const dir = join(root, 'etc/ssh');
      let names: string[] = [];
      try {
        names = readdirSync(dir).filter((n) => /^ssh_host_.*_key\.pub$/.test(n));
      } catch {
        return [];
      }
      return names.sort().flatMap((n) => sshFingerprint(readText(join(dir, n)) ?? '') ?? []);
    },
  };
}

/** NICs from sysfs alone (no `ip`): name, MAC, state, no addresses. */
function sysfsNics(sysfs: string): NicFact[] {
  let names: string[] = [];
  try {
    names = readdirSync(join(sysfs, 'class/net'));
  } catch {
    return [];
  }
  return names
    .filter((n) => n !== 'lo')
    .sort()
    .map((name) => ({
      name,
      mac: readText(join(sysfs, 'class/net', name, 'address')) ?? '',
      state: readText(join(sysfs, 'class/net', name, 'operstate')) ?? 'unknown',
      addresses: [],
    }));
}
