// The pieces of a node that the installer, the TUI and the stateless runtime read, made in a
// temporary folder: the live medium (HVNODE_LIVE_MEDIUM) and the image's account files.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A live medium with the kernel, initrd and squashfs the installer copies; returns its path. */
export function fakeLiveMedium(dir: string): string {
  const medium = join(dir, 'medium');
  for (const [f, text] of [
    ['isolinux/vmlinuz0', 'kernel'],
    ['isolinux/initrd0.img', 'initrd'],
    ['LiveOS/squashfs.img', 'squashfs'],
  ] as const) {
    mkdirSync(join(medium, f, '..'), { recursive: true });
    writeFileSync(join(medium, f), `${text}\n`);
  }
  return medium;
}

/** The image's /etc under `root`: root and admin (locked), their groups; returns `root`. */
export function fakeImageAccounts(root: string): string {
  const etc = join(root, 'etc');
  mkdirSync(etc, { recursive: true });
  writeFileSync(
    join(etc, 'passwd'),
    'root:x:0:0:root:/root:/bin/bash\nadmin:x:1000:1000::/home/admin:/bin/bash\n',
  );
  writeFileSync(join(etc, 'shadow'), 'root:*:19000:0:99999:7:::\nadmin:!:19000:0:99999:7:::\n');
  writeFileSync(join(etc, 'group'), 'root:x:0:\nshadow:x:42:\nadmin:x:1000:\n');
  return root;
}
