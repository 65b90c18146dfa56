// `hvnode-node mount-volumes`: an installed node's HostVG volumes on /config and /data, early at
// boot (hvnode-volumes.service, before persist --restore). Nothing here waits on udev: on a busy
// or slow machine `udevadm settle` can time out (it did in CI, and the node came up without its
// settings). LVM activates the volume group and makes the device nodes itself; a volume group
// whose disk the kernel has not finished probing is retried until a deadline.

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HvError } from '../../common/index.ts';
import { mountPoints } from '../persist.ts';
import { LVM_CONFIG } from './apply.ts';
import { type Runner, ToolError } from './run.ts';

const WHERE = 'hvnode-node mount-volumes';

export interface Volume {
  lv: string;
  mountPoint: string;
  /** A missing required volume fails the command; an optional one is skipped. */
  required: boolean;
}

export const VOLUMES: readonly Volume[] = [
  { lv: 'Config', mountPoint: '/config', required: true },
  { lv: 'Data', mountPoint: '/data', required: false },
];

export interface MountVolumesOptions {
  run: Runner;
  log: (line: string) => void;
  vg?: string;
  timeoutMs?: number;
  retryMs?: number;
  dev?: string;
  /** Where the mount points are (tests): /config is ROOT/config. */
  root?: string;
  mountinfo?: () => string;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

/** Activates the volume group and mounts its volumes; returns the mount points mounted now. */
export async function mountVolumes(o: MountVolumesOptions): Promise<string[]> {
  const vg = o.vg ?? 'HostVG';
  const dev = o.dev ?? '/dev';
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  const deadline = now() + (o.timeoutMs ?? 180_000);
  const mountinfo = o.mountinfo ?? (() => readFileSync('/proc/self/mountinfo', 'utf8'));
  for (let attempt = 1; ; attempt++) {
    try {
      await o.run('lvm', ['vgchange', '--config', LVM_CONFIG, '--activate', 'y', vg]);
      break;
    } catch (err) {
      if (!(err instanceof ToolError)) throw err;
      if (now() >= deadline)
        throw new HvError(`cannot activate ${vg}: ${err.message}`, {
          where: WHERE,
          hint: `is the disk with ${vg} attached? "lvm pvs" lists what LVM sees`,
          cause: err,
        });
      if (attempt === 1) o.log(`${vg} is not there yet (${err.message}); retrying`);
      await sleep(o.retryMs ?? 2000);
    }
  }
  const mounted: string[] = [];
  for (const volume of VOLUMES) {
    const v = { ...volume, mountPoint: join(o.root ?? '/', volume.mountPoint) };
    const device = `${dev}/${vg}/${v.lv}`;
    if (mountPoints(mountinfo()).includes(v.mountPoint)) continue;
    if (!existsSync(device)) {
      if (v.required)
        throw new HvError(`${vg} has no ${v.lv} volume (${device})`, {
          where: WHERE,
          hint: 'reinstall the node ("reinstall" on the kernel command line)',
        });
      continue;
    }
    mkdirSync(v.mountPoint, { recursive: true });
    try {
      await o.run('mount', ['-t', 'ext4', '-o', 'noatime', device, v.mountPoint]);
    } catch (err) {
      if (!(err instanceof ToolError) || v.required)
        throw new HvError(`cannot mount ${device} on ${v.mountPoint}: ${(err as Error).message}`, {
          where: WHERE,
          cause: err,
        });
      o.log(`${v.mountPoint} is not mounted: ${err.message}`);
      continue;
    }
    o.log(`mounted ${device} on ${v.mountPoint}`);
    mounted.push(v.mountPoint);
  }
  return mounted;
}
