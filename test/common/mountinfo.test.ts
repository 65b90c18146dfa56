// The one mountinfo parser (common/mountinfo.ts): the kernel's format, escapes, and this host's own file.

import { readFileSync } from 'node:fs';
import test from 'ava';
import { mountPoints, mountSource, parseMountinfo } from '../../common/index.ts';

const SAMPLE = [
  '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
  '30 22 0:26 / /run/initramfs/live ro,relatime shared:12 master:3 - iso9660 /dev/sr0 ro',
  '31 22 0:27 /sub /mnt/with\\040space rw - ext4 /dev/disk\\040x rw',
  '',
].join('\n');

test('fields after the optional tags and the " - " separator; octal escapes undone', (t) => {
  t.deepEqual(parseMountinfo(SAMPLE), [
    { root: '/', mountPoint: '/', fsType: 'ext4', source: '/dev/sda1' },
    { root: '/', mountPoint: '/run/initramfs/live', fsType: 'iso9660', source: '/dev/sr0' },
    { root: '/sub', mountPoint: '/mnt/with space', fsType: 'ext4', source: '/dev/disk x' },
  ]);
  t.deepEqual(mountPoints(SAMPLE), ['/', '/run/initramfs/live', '/mnt/with space']);
  t.is(mountSource(SAMPLE, '/run/initramfs/live'), '/dev/sr0');
  t.is(mountSource(SAMPLE, '/config'), undefined);
});

test("this process's own mountinfo: / and /proc are there", (t) => {
  const text = readFileSync('/proc/self/mountinfo', 'utf8');
  const points = mountPoints(text);
  t.true(points.includes('/'));
  t.is(parseMountinfo(text).find((m) => m.mountPoint === '/proc')?.fsType, 'proc');
});
