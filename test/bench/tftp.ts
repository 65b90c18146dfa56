// Section `tftp`: the config server's TFTP server against tftp-hpa's in.tftpd on loopback, both in
// their own process: a 50 MiB file lock-step (curl, blksize 1468) and windowed (windowsize 16, our
// raw client: curl has no windowsize), then a smaller file under 5% seeded loss with a duplicate
// ACK every 100 blocks (our raw client; both servers with the same 20 ms retransmission timer).
// tftp-hpa 5.2 does not implement windowsize (RFC 7440): it leaves the option out of its OACK and
// the transfer runs lock-step, which its rows say.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { REPO_DIR } from '../../builder/build/build.ts';
import type { TftpStats } from '../../config-server/tftp/index.ts';
import { type GetOptions, tftpGet } from '../config-server/tftp-client.ts';
import type { Row } from './results.ts';
import { BENCH_DIR } from './rootfs.ts';
import type { BenchContext, Section } from './section.ts';
import { summarize, type Timing, timeOnce } from './stats.ts';

const SECTION = 'tftp';
const HOST = '127.0.0.1';
const DIR = join(BENCH_DIR, 'tftp');
const BIG = { name: 'f50.bin', bytes: 50 * 2 ** 20 };
const LOSSY = { name: 'f5.bin', bytes: 5 * 2 ** 20 };
const BLKSIZE = 1468;
/** The same retransmission timer for both servers in every scenario (ms). */
const TIMER_MS = 20;
const run = promisify(execFile);

/** A server under test: where it listens and, for ours, its counters. */
interface Target {
  name: string;
  port: number;
  stats?: () => Promise<TftpStats>;
  stop: () => Promise<void>;
}

/** A free UDP port on HOST (bound, read, released: in.tftpd cannot be asked for port 0). */
async function freePort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, HOST, () => r()));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const stopChild = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });

/** Ours, in a child process so that the client does not share its event loop. */
async function startOurs(): Promise<Target> {
  const code = `
    import { createInterface } from 'node:readline';
    import { createTftpServer } from ${JSON.stringify(join(REPO_DIR, 'config-server/tftp/index.ts'))};
    const s = createTftpServer({ root: ${JSON.stringify(DIR)}, host: '${HOST}', port: 0, timeoutMs: ${TIMER_MS}, retries: 10 });
    const { port } = await s.listen();
    console.log(JSON.stringify({ port }));
    createInterface({ input: process.stdin })
      .on('line', () => console.log(JSON.stringify(s.stats())))
      .on('close', () => void s.close());`;
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', code], {
    cwd: REPO_DIR,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  const next = async () => JSON.parse(String((await lines.next()).value));
  const { port } = (await next()) as { port: number };
  return {
    name: 'ours',
    port,
    stats: async () => {
      child.stdin?.write('stats\n');
      return (await next()) as TftpStats;
    },
    stop: () => stopChild(child),
  };
}

/** tftp-hpa's in.tftpd in the foreground, chrooted to DIR, same block-size cap and timer. */
async function startHpa(): Promise<Target> {
  const port = await freePort();
  const args = ['-L', '-a', `${HOST}:${port}`, '-s', DIR, '-u', 'root', '-B', String(BLKSIZE)];
  const child = spawn('in.tftpd', [...args, '-T', String(TIMER_MS * 1000)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  if (child.exitCode !== null) throw new Error(`in.tftpd ${args.join(' ')} exited with ${child.exitCode}`);
  return { name: 'tftp-hpa', port, stop: () => stopChild(child) };
}

function makeFiles(say: (m: string) => void): Record<string, string> {
  mkdirSync(DIR, { recursive: true });
  chmodSync(DIR, 0o755);
  const sums: Record<string, string> = {};
  for (const f of [BIG, LOSSY]) {
    const path = join(DIR, f.name);
    if (!existsSync(path) || statSync(path).size !== f.bytes) {
      say(`writing ${f.name} (${f.bytes} bytes)`);
      writeFileSync(path, randomBytes(f.bytes), { mode: 0o644 });
    }
    sums[f.name] = createHash('sha256').update(readFileSync(path)).digest('hex');
  }
  return sums;
}

const blocksOf = (bytes: number) => Math.floor(bytes / BLKSIZE) + 1;
const mbps = (bytes: number, seconds: number) => bytes / seconds / 1e6;

interface Scenario {
  what: string;
  file: { name: string; bytes: number };
  /** one transfer; returns the DATA packets the client saw */
  transfer: (target: Target, i: number) => Promise<number>;
  /** tftp-hpa cannot do it (windowsize): its row says so instead */
  hpaNote?: string;
  hpaSkip?: boolean;
}

function scenarios(sums: Record<string, string>): Scenario[] {
  const check = (name: string, data: Buffer) => {
    const sum = createHash('sha256').update(data).digest('hex');
    if (sum !== sums[name])
      throw new Error(`${name}: the download differs from the file (${data.length} bytes)`);
  };
  const raw = (file: { name: string }, extra: Partial<GetOptions>) => async (target: Target, i: number) => {
    const r = await tftpGet({
      host: HOST,
      port: target.port,
      file: file.name,
      deadlineMs: 300_000,
      ...extra,
      seed: i + 1,
    });
    if (!r.complete) throw new Error(`${target.name}: ${file.name} did not complete: ${r.outcome}`);
    check(file.name, r.data);
    return r.dataPacketsReceived;
  };
  const lossy = { loss: 0.05, dupAckEvery: 100, resendMs: 3 * TIMER_MS, maxResends: 50 };
  return [
    {
      what: `${BIG.bytes / 2 ** 20} MiB lock-step, blksize ${BLKSIZE} (curl)`,
      file: BIG,
      transfer: async (target) => {
        const out = join(DIR, `out-${target.name}`);
        await run('curl', [
          '-sS',
          '--tftp-blksize',
          String(BLKSIZE),
          '-o',
          out,
          `tftp://${HOST}:${target.port}/${BIG.name}`,
        ]);
        check(BIG.name, readFileSync(out));
        rmSync(out);
        return blocksOf(BIG.bytes);
      },
    },
    {
      what: `${BIG.bytes / 2 ** 20} MiB windowsize 16, blksize ${BLKSIZE} (raw client)`,
      file: BIG,
      transfer: raw(BIG, { options: { blksize: BLKSIZE, windowsize: 16 } }),
      hpaNote: 'no windowsize in tftp-hpa 5.2: ran lock-step',
    },
    {
      what: `${LOSSY.bytes / 2 ** 20} MiB lock-step, 5% loss + dup ACK/100 blocks`,
      file: LOSSY,
      transfer: raw(LOSSY, { options: { blksize: BLKSIZE }, ...lossy }),
    },
    {
      what: `${LOSSY.bytes / 2 ** 20} MiB windowsize 16, 5% loss + dup ACK/100 blocks`,
      file: LOSSY,
      transfer: raw(LOSSY, { options: { blksize: BLKSIZE, windowsize: 16 }, ...lossy }),
      hpaSkip: true,
      hpaNote: 'n/a: tftp-hpa 5.2 has no windowsize (same as its lock-step row)',
    },
  ];
}

interface Measured {
  timing: Timing;
  /** DATA packets per run: the server's count for ours, what reached the client for tftp-hpa */
  packets: number[];
  /** Re-sent DATA: on timeout, plus window rewinds (RFC 7440) */
  retransmits: number[];
}

/**
 * Runs of every target in turn (ours, tftp-hpa, ours, ...): the machine is shared, and
 * interleaving spreads a busy spell over both instead of penalising whichever ran during it.
 */
async function measure(ctx: BenchContext, s: Scenario, targets: Target[]): Promise<Measured[]> {
  if (ctx.warmup) for (const target of targets) await s.transfer(target, 1000);
  const runs = targets.map(() => ({
    samples: [] as number[],
    packets: [] as number[],
    retransmits: [] as number[],
  }));
  for (let i = 0; i < ctx.runs; i++) {
    for (const [k, target] of targets.entries()) {
      const m = runs[k] as (typeof runs)[number];
      const before = await target.stats?.();
      const { seconds, value: seen } = await timeOnce(() => s.transfer(target, i));
      const after = await target.stats?.();
      m.samples.push(seconds);
      m.packets.push(before && after ? after.dataPacketsSent - before.dataPacketsSent : seen);
      // resent on timeout, plus (windowed) the rest of a window after a gap ACK (RFC 7440)
      m.retransmits.push(
        before && after
          ? after.retransmits - before.retransmits + after.windowRewinds - before.windowRewinds
          : Number.NaN,
      );
      ctx.say(`${s.what}: ${target.name} run ${i + 1}: ${seconds.toFixed(2)} s`);
    }
  }
  return runs.map((m) => ({ timing: summarize(m.samples), packets: m.packets, retransmits: m.retransmits }));
}

const median = (xs: number[]) => summarize(xs).median;

async function runTftp(ctx: BenchContext): Promise<Row[]> {
  const sums = makeFiles(ctx.say);
  const ours = await startOurs();
  const hpa = await startHpa().catch(async (err) => {
    await ours.stop();
    throw err;
  });
  const rows: Row[] = [];
  try {
    for (const s of scenarios(sums)) {
      const blocks = blocksOf(s.file.bytes);
      const [mine, peer] = (await measure(ctx, s, s.hpaSkip ? [ours] : [ours, hpa])) as [Measured, Measured?];
      const rate = mbps(s.file.bytes, mine.timing.median);
      const peerRate = peer ? mbps(s.file.bytes, peer.timing.median) : undefined;
      const packets = median(mine.packets);
      const retransmits = median(mine.retransmits);
      rows.push({
        section: SECTION,
        what: `${s.what}: ours`,
        status: 'ok',
        timing: mine.timing,
        compare: peer
          ? `tftp-hpa ${peer.timing.median.toFixed(2)} s (${peerRate?.toFixed(1)} MB/s)`
          : undefined,
        met: peerRate === undefined ? undefined : rate >= peerRate,
        notes:
          `${rate.toFixed(1)} MB/s; DATA sent ${packets} for ${blocks} blocks, ${retransmits} re-sent ` +
          `(timeout or window rewind); ≤ blocks × 1.1 + re-sent: ${packets <= blocks * 1.1 + retransmits ? 'yes' : 'NO'}`,
        data: {
          bytes: s.file.bytes,
          blocks,
          mbps: rate,
          packets: mine.packets,
          retransmits: mine.retransmits,
        },
      });
      if (peer)
        rows.push({
          section: SECTION,
          what: `${s.what}: tftp-hpa in.tftpd`,
          status: 'ok',
          timing: peer.timing,
          notes: `${peerRate?.toFixed(1)} MB/s; DATA received ${median(peer.packets)} for ${blocks} blocks${s.hpaNote ? `; ${s.hpaNote}` : ''}`,
          data: { bytes: s.file.bytes, blocks, mbps: peerRate, packets: peer.packets },
        });
      else
        rows.push({
          section: SECTION,
          what: `${s.what}: tftp-hpa in.tftpd`,
          status: 'skipped',
          notes: s.hpaNote,
        });
    }
  } finally {
    await Promise.all([ours.stop(), hpa.stop()]);
  }
  return rows;
}

export const tftpSections: Section[] = [
  {
    name: SECTION,
    summary: 'TFTP: ours vs tftp-hpa in.tftpd, 50 MiB lock-step and windowed, then 5% loss',
    defaultRuns: 3,
    warms: true,
    run: runTftp,
  },
];
