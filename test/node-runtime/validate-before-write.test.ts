// Nothing is changed until everything is validated: an autoinstall whose command line has a
// setting the install cannot carry out stops with exit 65 at that argument before it touches the
// disk. Before, these were found by the settings stage, after the disk had been partitioned and
// the image copied (storage_init=/dev/vda bond=bond0:eth0,eth1:mode=bogus wiped the disk, then
// failed). A real loop device stands in for the disk; its first and last MiBs hold random bytes
// that any partitioning, wiping or formatting would change.

import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readSync,
  rmSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { ExecutionContext } from 'ava';
import test from 'ava';
import { execa } from 'execa';
import { cli, requireRoot, requireTools } from '../helpers/env.ts';
import { fakeLiveMedium } from '../helpers/fake-node.ts';

const MIB = 1024 ** 2;
const DISK_BYTES = 10 * 1024 * MIB;
const EDGE = 16 * MIB;
const HASH =
  '$6$hvnodetest$Ssqs5nX83l0gUzMViXZV2CkU3rggXNxBdPNTdD9PsKOccW/Fv7NZ1XGD9Gdo3lRSJ3NtIFsrbCbi8tIG8qUgT0';

interface Disk {
  device: string;
  file: string;
  env: NodeJS.ProcessEnv;
  /** An image root whose /etc has no "admin" account. */
  noAdminRoot: string;
}

/** A sparse 10 GiB loop disk with random first and last MiBs, a live medium and an image /etc. */
async function disk(t: ExecutionContext): Promise<Disk> {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-validate-'));
  let device = '';
  t.teardown(async () => {
    if (device) await execa('losetup', ['-d', device], { reject: false });
    rmSync(dir, { recursive: true, force: true });
  });
  const file = join(dir, 'disk.img');
  writeFileSync(file, '');
  truncateSync(file, DISK_BYTES);
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, randomBytes(MIB), 0, MIB, 0);
    writeSync(fd, randomBytes(MIB), 0, MIB, DISK_BYTES - MIB);
  } finally {
    closeSync(fd);
  }
  device = (await execa('losetup', ['--find', '--show', file])).stdout.trim();

  const medium = fakeLiveMedium(dir);
  const etc = (root: string, users: string[]) => {
    mkdirSync(join(dir, root, 'etc'), { recursive: true });
    writeFileSync(
      join(dir, root, 'etc', 'passwd'),
      users.map((u, i) => `${u}:x:${i * 1000}:${i * 1000}::/home/${u}:/bin/bash\n`).join(''),
    );
    writeFileSync(join(dir, root, 'etc', 'shadow'), users.map((u) => `${u}:!:19000:0:99999:7:::\n`).join(''));
    return join(dir, root);
  };
  writeFileSync(join(dir, 'meminfo'), 'MemTotal:        2097152 kB\n');
  return {
    device,
    file,
    noAdminRoot: etc('no-admin', ['root']),
    env: {
      ...process.env,
      HVNODE_INCLUDE_DISKS: basename(device),
      HVNODE_MEMINFO: join(dir, 'meminfo'),
      HVNODE_LIVE_MEDIUM: medium,
      HVNODE_IMAGE_ROOT: etc('image', ['root', 'admin']),
      HVNODE_GRUB_PAYLOAD: join(dir, 'no-grub-needed'),
    },
  };
}

/** sha256 of the disk's first and last 16 MiB, read through the loop device. */
function fingerprint(device: string): string {
  const hash = createHash('sha256');
  const fd = openSync(device, 'r');
  try {
    const buf = Buffer.alloc(EDGE);
    for (const at of [0, DISK_BYTES - EDGE]) {
      readSync(fd, buf, 0, EDGE, at);
      hash.update(buf);
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

function autoinstall(d: Disk, cmdline: string, args: string[] = [], env: NodeJS.ProcessEnv = {}) {
  return execa(cli('hvnode-node'), ['autoinstall', '--no-reboot', ...args, '--cmdline', cmdline], {
    reject: false,
    env: { ...d.env, ...env },
  });
}

const TOOLS = { losetup: 'mount', wipefs: 'util-linux', blkid: 'util-linux', lvm: 'lvm2', sfdisk: 'fdisk' };

/** [the bad argument(s), the argument the error is at, what it says, an image root override]. */
const CASES: [string, string, RegExp, 'noAdmin'?][] = [
  [
    'bond=bond0:eth0,eth1:mode=bogus',
    'bond=bond0:eth0,eth1:mode=bogus',
    /mode=bogus: expected one of balance-rr/,
  ],
  ['bond=bond0:eth0,eth1:primary=eth9', 'bond=bond0:eth0,eth1:primary=eth9', /expected one of the slaves/],
  [
    'bond_setup=bond0:eth0:use_carrier=0',
    'bond_setup=bond0:eth0:use_carrier=0',
    /"use_carrier" is not supported/,
  ],
  ['netconsole=logs.example.com:6666', 'netconsole=logs.example.com:6666', /needs the IP address/],
  ['bond=bond0:eth0,eth1 vlan=20:eth1', 'vlan=20:eth1', /eth1 is a slave of the bond bond0/],
  [
    `adminpw=${HASH}`,
    'adminpw=(not shown)',
    /the image has no user "admin" \(not in \/etc\/passwd\)/,
    'noAdmin',
  ],
  ['stateless=garbage', 'stateless=garbage', /expected stateless/],
];

test.serial(
  'a bad argument stops autoinstall at that argument (65) before the disk is touched',
  async (t) => {
    requireRoot(t);
    requireTools(t, TOOLS);
    const d = await disk(t);
    const before = fingerprint(d.device);
    const base = `storage_init=${d.device} hostname=node1.example.com`;

    // the same line without the bad argument gets through the whole plan: the disk is found, the
    // layout fits, the image is there (so what stops the runs below is the argument, nothing else)
    const good = await autoinstall(d, base, ['--dry-run']);
    t.is(good.exitCode, 0, good.stderr);
    t.regex(good.stdout, new RegExp(`HostVG disks: ${d.device}`));

    for (const [bad, arg, message, image] of CASES) {
      const r = await autoinstall(d, `${base} ${bad}`, [], image ? { HVNODE_IMAGE_ROOT: d.noAdminRoot } : {});
      t.is(r.exitCode, 65, `${bad}: ${r.stderr}`);
      // the argument is the error's place, named once
      const line = r.stderr.split('\n').find((l) => l.startsWith(`${arg}: error: `)) ?? '';
      t.regex(line, message, `${bad}: ${r.stderr}`);
      t.notRegex(r.stdout, /\[1\/\d+\]|partitioning|copying/, `${bad}: no step ran`);
      t.is(fingerprint(d.device), before, `${bad}: the disk is unchanged`);
    }
  },
);
