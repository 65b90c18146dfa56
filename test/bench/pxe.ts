// Section `pxe-register` (issue 12): seconds from power-on (QEMU start, TCG) of one stateless node
// to its registration at the engine stand-in, at a site in a private network namespace
// (test/helpers/pxe-site.ts: dnsmasq for DHCP, hvnode-config-server, the engine stand-in), for
// two boot paths, QEMU's iPXE ROM the client in both:
// - pxelinux over TFTP: pxelinux.0, its per-MAC config, the kernel and the initrd that carries
//   the whole ISO, all lock-step TFTP (the stateless e2e's path);
// - iPXE over HTTP: dnsmasq chains iPXE to GET /v1/boot/<mac> on the server's --http listener;
//   the script fetches kernel and initrd over HTTP, dracut's livenet the squashfs.
// Then the node fetches its bundle over HTTPS, applies it and registers. The registration is
// seen in the stand-in's state.json (written every 200 ms, polled every 250 ms); the marks on
// the way (kernel banner, bundle applied, ready line) come from the serial log, polled each
// second. The machine is shared: the rows carry the load average seen during the boot. The
// serial logs of the last run stay in /var/tmp/hvnode-bench/pxe-register-logs.

import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { removeTree } from '../../builder/build/build.ts';
import { type BootPath, type SiteNode, siteUnmet, startSite } from '../helpers/pxe-site.ts';
import { testIso } from '../helpers/test-iso.ts';
import { fmtMiB, fmtSeconds, type Row, statusRow, timedRow } from './results.ts';
import { BENCH_DIR } from './rootfs.ts';
import type { BenchContext, Section } from './section.ts';
import { summarize } from './stats.ts';

const SECTION = 'pxe-register';
const TARGET = 75;
/** The serial logs of the last run stay here, for a look at where a boot spent its time. */
const LOGS = join(BENCH_DIR, `${SECTION}-logs`);
/** Per boot, power-on to registered: generous, other boots may share the two cores. */
const DEADLINE = 600;
const MARKS = {
  kernel: /Linux version \d/,
  /** the initramfs is done: the root (the ISO's squashfs, loop-mounted or fetched) is up */
  root: /dracut: Switching root/,
  /** hvnode-stateless.service starts (right when network-online.target is reached) */
  stateless: /Started hvnode-stateless/,
  applied: /hvnode: stateless: applied the bundle/,
  ready: /hvnode: ready \S+ stateless/,
};

interface PathSpec {
  boot: BootPath;
  what: string;
  /** What the node pulls before its kernel runs and its root is mounted (files of the image's trees). */
  files: string[];
  transport: string;
}

const PATHS: PathSpec[] = [
  {
    boot: 'pxelinux',
    what: 'pxelinux over TFTP (initrd carries the ISO)',
    files: ['tftpboot/vmlinuz0', 'tftpboot/initrd0.img'],
    transport: 'lock-step TFTP',
  },
  {
    boot: 'ipxe-http',
    what: 'iPXE chain over HTTP (livenet base + the layers)',
    files: ['http/vmlinuz0', 'http/initrd0.img', 'http/squashfs.img', 'http/layers', 'http/top.img'],
    transport: 'HTTP',
  },
];

/** The 1-minute load average every 5 s while a boot runs. */
function loadSampler() {
  const samples = [loadavg()[0] ?? 0];
  const timer = setInterval(() => samples.push(loadavg()[0] ?? 0), 5000);
  return {
    stop: () => {
      clearInterval(timer);
      samples.push(loadavg()[0] ?? 0);
      const round = (x: number) => Math.round(x * 100) / 100;
      return {
        mean: round(samples.reduce((a, b) => a + b, 0) / samples.length),
        max: round(Math.max(...samples)),
      };
    },
  };
}

/** One node per run (its own UUID, so each registration is told apart), booted one after another. */
function nodeFor(run: number): SiteNode {
  const n = (run + 1).toString(16).padStart(2, '0');
  return {
    mac: `52:54:00:be:9c:${n}`,
    uuid: `6e0d3a52-be9c-4c1b-9f3e-0000000000${n}`,
    host: `bench-${run + 1}.pxe.test`,
  };
}

async function pathRow(p: PathSpec, ctx: BenchContext): Promise<Row> {
  const dir = mkdtempSync(join(BENCH_DIR, `${SECTION}-${p.boot}-`));
  let site: Awaited<ReturnType<typeof startSite>> | undefined;
  try {
    // asked per path: other sessions' source changes rebuild the test ISO and prune old ones
    const { iso, buildSeconds } = await testIso();
    if (buildSeconds > 0) ctx.say(`built the test ISO in ${buildSeconds} s`);
    site = await startSite({
      tag: `bp${p.boot === 'pxelinux' ? 't' : 'h'}`,
      subnet: '10.213.9',
      dir,
      iso,
      boot: p.boot,
    });
    const imageDir = join(site.data, 'images', site.version);
    const bytes = p.files.reduce((sum, f) => sum + statSync(join(imageDir, f)).size, 0);
    const samples: number[] = [];
    const marks: Record<string, number>[] = [];
    const loads: { mean: number; max: number }[] = [];
    for (let i = 0; i < ctx.runs; i++) {
      const node = nodeFor(i);
      await site.putBundle(node);
      const load = loadSampler();
      let ready: number | undefined;
      const m = await site.boot(node, {
        tap: `tap-${i}`,
        serialLog: join(dir, `serial-${i}.log`),
        marks: MARKS,
      });
      try {
        await site.registered(node, DEADLINE);
        samples.push(m.since());
        // the ready line follows the registration: its mark, outside the figure
        ready = await m.waitSerial(MARKS.ready, 60);
      } catch (err) {
        const lines = m.log().split('\n').slice(-40).join('\n');
        throw new Error(`${(err as Error).message}\n--- last serial output ---\n${lines}`);
      } finally {
        m.stop();
        loads.push(load.stop());
      }
      marks.push({
        ...m.marks,
        ...(ready !== undefined ? { ready } : {}),
        registered: samples.at(-1) as number,
      });
      ctx.say(
        `${p.boot} ${i + 1}: registered at ${samples.at(-1)} s; marks ${JSON.stringify(marks.at(-1))}; load ${loads.at(-1)?.mean}`,
      );
    }
    const med = (k: string) => {
      const v = marks.map((m) => m[k]).filter((x): x is number => x !== undefined);
      return v.length > 0 ? fmtSeconds(summarize(v).median) : '?';
    };
    const load = summarize(loads.map((l) => l.mean)).median;
    const loadMax = Math.max(...loads.map((l) => l.max));
    return timedRow(SECTION, p.what, summarize(samples), {
      targetSeconds: TARGET,
      notes: `QEMU TCG -smp 2, 2 GiB; ${fmtMiB(bytes)} over ${p.transport} before the root is up; marks (median): kernel banner ${med('kernel')} s, switch root ${med('root')} s, hvnode-stateless started ${med('stateless')} s, bundle applied ${med('applied')} s, ready line ${med('ready')} s; 1-min load average during the boot ${load} (max ${loadMax}) on ${cpus().length} cores: other sessions may have been using the CPU; ±0.25 s (state.json polled), marks ±1 s`,
      data: { marks, loadavg: loads, bytesBeforeRoot: bytes, files: p.files },
    });
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    ctx.say(`${p.boot} failed: ${msg}`);
    return statusRow(SECTION, p.what, 'failed', msg.split('\n').slice(0, 3).join(' '));
  } finally {
    await site?.close();
    mkdirSync(LOGS, { recursive: true });
    for (const f of readdirSync(dir))
      if (f.endsWith('.log')) copyFileSync(join(dir, f), join(LOGS, `${p.boot}-${f}`));
    removeTree(dir);
  }
}

async function run(ctx: BenchContext): Promise<Row[]> {
  const unmet = siteUnmet();
  if (unmet) return PATHS.map((p) => statusRow(SECTION, p.what, 'skipped', unmet));
  removeTree(LOGS);
  const rows: Row[] = [];
  for (const p of PATHS) rows.push(await pathRow(p, ctx));
  return rows;
}

export const pxeSections: Section[] = [
  {
    name: SECTION,
    summary:
      'stateless PXE node, QEMU power-on to registered at the engine (TCG): pxelinux/TFTP vs iPXE/HTTP',
    defaultRuns: 1,
    warms: false,
    run,
  },
];
