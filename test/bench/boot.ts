// Section 5: seconds from QEMU start (TCG) to the node's ready line on the serial port, per boot
// path, with the test profile's ISO (test/helpers/test-iso.ts builds it once per source tree).
// PXE trees and disk images come from `hvnode iso-to-pxeboot ISO --out DIR` and
// `hvnode iso-to-disk ISO IMAGE`; a command that exits 70 ("not built yet") makes its row say so.

import { existsSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { removeTree } from '../../builder/build/build.ts';
import { type BootOptions, bootToReady } from '../helpers/qemu.ts';
import { testIso } from '../helpers/test-iso.ts';
import { hvnode, NOT_BUILT } from './hvnode.ts';
import { fmtSeconds, type Row, statusRow, timedRow } from './results.ts';
import { BENCH_DIR } from './rootfs.ts';
import type { BenchContext, Section } from './section.ts';
import { summarize } from './stats.ts';

/** Serial-log lines timed on the way (bootToReady returns 2 s after the ready line, so it is a mark too). */
const MARKS = { kernel: /Linux version \d/, ready: /hvnode: ready \S+ \S+/ };
/** A Debian live ISO reached login: in about 60 s under TCG here (build-host-facts.md). */
const PEER = 'Debian live ISO ~60 s to login: (reference)';

/** Boot media for a path, or a row saying why there are none. */
type Media = Omit<BootOptions, 'serialLog'> | Row;

interface BootPath {
  name: string;
  what: string;
  media: (iso: string, dir: string, section: string) => Promise<Media>;
}

const isRow = (m: Media): m is Row => 'section' in m;

/** A guarded `hvnode <command>`: 70 is "not built", another failure is "failed" with its output. */
async function guarded(section: string, what: string, args: string[], cwd: string): Promise<Row | undefined> {
  const r = await hvnode(args, cwd);
  if (r.exitCode === NOT_BUILT) return statusRow(section, what, 'not built', `hvnode ${args[0]} exits 70`);
  if (r.exitCode !== 0)
    return statusRow(
      section,
      what,
      'failed',
      `hvnode ${args.join(' ')}: exit ${r.exitCode}: ${r.output.slice(-300)}`,
    );
  return undefined;
}

const PATHS: BootPath[] = [
  {
    name: 'iso-bios',
    what: 'ISO, SeaBIOS (-cdrom)',
    media: async (iso) => ({ media: ['-cdrom', iso, '-boot', 'd'] }),
  },
  {
    name: 'iso-uefi',
    what: 'ISO, OVMF (-cdrom)',
    media: async (iso) => ({ media: ['-cdrom', iso, '-boot', 'd'], uefi: true }),
  },
  {
    name: 'pxe',
    what: 'PXE (iso-to-pxeboot, QEMU TFTP)',
    media: async (iso, dir, section) => {
      const out = join(dir, 'pxe');
      const failed = await guarded(section, 'PXE', ['iso-to-pxeboot', iso, '--out', out], dir);
      if (failed) return failed;
      const tftp = join(out, 'tftpboot');
      if (!existsSync(join(tftp, 'pxelinux.0')))
        return statusRow(section, 'PXE', 'failed', `iso-to-pxeboot made no ${tftp}/pxelinux.0`);
      return {
        media: ['-boot', 'n'],
        nic: ['-nic', `user,restrict=on,tftp=${tftp},bootfile=pxelinux.0`],
        memoryMiB: 2048,
      };
    },
  },
  {
    name: 'disk',
    what: 'disk image (iso-to-disk, virtio)',
    media: async (iso, dir, section) => {
      // an image file: iso-to-disk creates it, sized for the ISO's files
      const img = join(dir, 'disk.img');
      const failed = await guarded(section, 'disk', ['iso-to-disk', iso, img], dir);
      return failed ?? { media: ['-drive', `file=${img},format=raw,if=virtio`] };
    },
  },
];

async function bootRows(path: BootPath, ctx: BenchContext): Promise<Row[]> {
  const section = `boot-${path.name}`;
  const { iso, buildSeconds } = await testIso();
  if (buildSeconds > 0) ctx.say(`built the test ISO in ${buildSeconds} s`);
  const dir = mkdtempSync(join(BENCH_DIR, `${section}-`));
  try {
    const media = await path.media(iso, dir, section);
    if (isRow(media)) return [media];
    const samples: number[] = [];
    const kernel: number[] = [];
    for (let i = 0; i < ctx.runs; i++) {
      const r = await bootToReady({
        ...media,
        serialLog: join(dir, `serial-${i}.log`),
        deadlineSeconds: 600,
        marks: MARKS,
      });
      samples.push(r.marks.ready ?? r.seconds);
      if (r.marks.kernel !== undefined) kernel.push(r.marks.kernel);
      ctx.say(
        `boot ${i + 1}: kernel at ${r.marks.kernel ?? '?'} s, ready at ${r.marks.ready ?? r.seconds} s`,
      );
    }
    return [
      timedRow(section, path.what, summarize(samples), {
        compare: PEER,
        notes: `test profile ISO; QEMU TCG, -smp 2; kernel banner at ${kernel.length > 0 ? fmtSeconds(summarize(kernel).median) : '?'} s (median); ±1 s (serial log polled each second)`,
      }),
    ];
  } finally {
    removeTree(dir);
  }
}

export const bootSections: Section[] = PATHS.map((p) => ({
  name: `boot-${p.name}`,
  summary: `seconds to "hvnode: ready" in QEMU TCG: ${p.what}`,
  defaultRuns: 1,
  warms: false,
  run: (ctx: BenchContext) => bootRows(p, ctx),
}));
