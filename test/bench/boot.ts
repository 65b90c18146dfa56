// Section 5: seconds from QEMU start (TCG) to the node's ready line on the serial port, per boot
// path, with the test profile's ISO (test/helpers/test-iso.ts builds it once per source tree).
// PXE trees and disk images come from `hvnode iso-to-pxeboot ISO --out DIR` and
// `hvnode iso-to-disk ISO IMAGE`; a command that exits 70 ("not built yet") makes its row say so.

import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeTree } from '../../builder/build/build.ts';
import { type BootOptions, bootToReady, kernelStalls, visibleText } from '../helpers/qemu.ts';
import { isoKernel, testIso } from '../helpers/test-iso.ts';
import { hvnode, hvnodeBuild, NOT_BUILT, seedAptCache } from './hvnode.ts';
import { fmtMiB, fmtSeconds, type Row, statusRow, timedRow } from './results.ts';
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
    const stalls: string[] = [];
    for (let i = 0; i < ctx.runs; i++) {
      const r = await bootToReady({
        ...media,
        serialLog: join(dir, `serial-${i}.log`),
        deadlineSeconds: 600,
        marks: MARKS,
      });
      samples.push(r.marks.ready ?? r.seconds);
      if (r.marks.kernel !== undefined) kernel.push(r.marks.kernel);
      stalls.push(kernelStalls(r.log));
      ctx.say(
        `boot ${i + 1}: kernel at ${r.marks.kernel ?? '?'} s, ready at ${r.marks.ready ?? r.seconds} s; ${stalls.at(-1)}`,
      );
    }
    return [
      timedRow(section, path.what, summarize(samples), {
        compare: PEER,
        targetSeconds: READY_TARGET,
        notes: `test profile ISO; QEMU TCG, -smp 2; kernel banner at ${kernel.length > 0 ? fmtSeconds(summarize(kernel).median) : '?'} s (median); ±1 s (serial log polled each second); stalls: ${stalls.join(' / ')}`,
      }),
    ];
  } finally {
    removeTree(dir);
  }
}

/** The boot's targets (issue 14): ready within 30 s, at most 200 MiB in use with libvirtd up. */
const READY_TARGET = 30;
const RAM_TARGET_MIB = 200;
/** The same package set booted by other tools (shared/reference; 2 GiB guests, `free` "used"). */
const RAM_PEERS = 'live-build 209–217 MiB, kiwi 224 MiB (reference)';

/**
 * The default image, booted with hvnode.selftest (the ISO's kernel, initrd and arguments, as the
 * default-image e2e test boots it): seconds to ready, the three slowest units on the ready
 * unit's critical chain, and the memory in use once libvirtd is up.
 */
async function chainRows(ctx: BenchContext): Promise<Row[]> {
  const section = 'boot-chain';
  const dir = mkdtempSync(join(BENCH_DIR, `${section}-`));
  try {
    const cache = join(dir, 'cache');
    seedAptCache(cache);
    ctx.say('building the default ISO (warm package cache)');
    const build = await hvnodeBuild('default', join(dir, 'out'), cache, join(dir, 'tmp'));
    const { kernel, initrd, append } = await isoKernel(build.report.iso, dir);
    const runs: { ready: number; chain: string; mem: number; used: number; stalls: string }[] = [];
    for (let i = 0; i < ctx.runs; i++) {
      const serialLog = join(dir, `serial-${i}.log`);
      const r = await bootToReady({
        media: [
          '-cdrom',
          build.report.iso,
          '-kernel',
          kernel,
          '-initrd',
          initrd,
          '-append',
          `${append} hvnode.selftest`,
        ],
        serialLog,
        memoryMiB: 2048,
        deadlineSeconds: 600,
        alsoWaitFor: /hvnode: critical-chain hvnode-ready\.service/,
        marks: MARKS,
      });
      const log = visibleText(readFileSync(serialLog, 'utf8'));
      // the services' chain and the ready unit's own (hvnode-node critical-chain prints both)
      const chain =
        [...log.matchAll(/hvnode: critical-chain (.*)/g)].map((m) => m[1]).join('; ') || 'not printed';
      const used = Number(/mem_used_mib=(\d+)/.exec(log)?.[1] ?? Number.NaN);
      const probe = Number(/probe_mib=(\d+)/.exec(log)?.[1] ?? Number.NaN);
      // the selftest runs in Node.js: what it holds itself is not the node's (free, as the peers
      // were measured, is a small C program)
      const mem = used - probe;
      const stalls = kernelStalls(log);
      runs.push({ ready: r.marks.ready ?? r.seconds, chain, mem, used, stalls });
      ctx.say(
        `boot ${i + 1}: ready at ${r.marks.ready ?? r.seconds} s; ${stalls}; ${used} MiB used, ${mem} without the selftest's own ${probe}; ${chain}`,
      );
    }
    const ready = summarize(runs.map((r) => r.ready));
    const median = [...runs].sort((a, b) => a.ready - b.ready)[Math.floor((runs.length - 1) / 2)];
    const memValues = runs.map((r) => r.mem).filter(Number.isFinite);
    const mem = memValues.length > 0 ? summarize(memValues) : undefined;
    return [
      timedRow(section, 'default ISO to ready (its kernel + initrd + hvnode.selftest)', ready, {
        targetSeconds: READY_TARGET,
        notes: `critical chain of the median boot: ${median?.chain}; stalls: ${runs.map((r) => r.stalls).join(' / ')}; ISO ${fmtMiB(build.report.isoBytes)}`,
      }),
      {
        section,
        what: 'memory in use after the boot, libvirtd up (MemTotal - MemAvailable less the Node.js probe, 2 GiB guest)',
        status: mem ? 'ok' : 'failed',
        compare: `≤ ${RAM_TARGET_MIB} MiB; ${RAM_PEERS}`,
        met: mem !== undefined && mem.median <= RAM_TARGET_MIB,
        notes: mem
          ? `${mem.median} MiB (median of ${mem.samples.length}: ${runs.map((r) => r.mem).join(', ')}; with the probe: ${runs.map((r) => r.used).join(', ')})`
          : 'no mem_used_mib and probe_mib in the selftest line',
        data: { mem: runs.map((r) => r.mem), used: runs.map((r) => r.used) },
      },
    ];
  } finally {
    removeTree(dir);
  }
}

export const bootSections: Section[] = [
  ...PATHS.map((p) => ({
    name: `boot-${p.name}`,
    summary: `seconds to "hvnode: ready" in QEMU TCG: ${p.what}`,
    defaultRuns: 1,
    warms: false,
    run: (ctx: BenchContext) => bootRows(p, ctx),
  })),
  {
    name: 'boot-chain',
    summary: 'the default ISO booted with hvnode.selftest: ready, its critical chain, memory in use',
    defaultRuns: 3,
    warms: false,
    run: chainRows,
  },
];
