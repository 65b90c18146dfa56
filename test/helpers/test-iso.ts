// One build of the test profile shared by the boot-path tests (SeaBIOS, OVMF, PXE, disk):
// built once per source tree, keyed by a hash of everything that goes into the image, under a
// lock so that test files running side by side wait for one build instead of making two.

import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { execa } from 'execa';
import { isAlive } from '../../common/index.ts';
import { cli, REPO } from './env.ts';

const INPUT_DIRS = ['builder', 'common', 'kickstarts', 'blacklist', 'node-runtime', 'manifests', 'tui'];
/**
 * Sources that neither reach the ISO nor run while it is built: the writers of the other outputs
 * and the dnf backend. The CLI is not among them: the build runs through it.
 */
const NOT_IN_IMAGE = /^builder\/(pxe\/|disk\/|rootfs\/dnf\.ts$)/;
const ROOT = '/var/tmp/hvnode-test-iso';
const KEEP = 3;

function hashInputs(): string {
  const h = createHash('sha256');
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && !NOT_IN_IMAGE.test(relative(REPO, p))) {
        h.update(relative(REPO, p));
        h.update(readFileSync(p));
      }
    }
  };
  for (const d of INPUT_DIRS) walk(join(REPO, d));
  h.update(readFileSync(join(REPO, 'package-lock.json')));
  return h.digest('hex').slice(0, 16);
}

export interface TestIso {
  iso: string;
  out: string;
  /** seconds the build took, or 0 when an earlier build of the same sources was reused */
  buildSeconds: number;
  /** The build's --tmpdir (undefined for HVNODE_TEST_ISO): its work tree must be gone. */
  tmpDir?: string;
}

async function withLock<T>(lock: string, fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch {
      let holder = Number.NaN;
      try {
        holder = Number(readFileSync(join(lock, 'pid'), 'utf8'));
      } catch {}
      const alive = Number.isNaN(holder) || isAlive(holder);
      // a holder that died (or a lock older than 20 minutes) is stale
      if (!alive || (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > 20 * 60_000))
        rmSync(lock, { recursive: true, force: true });
      else await new Promise((r) => setTimeout(r, 2000));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * The test profile's ISO for the current sources (built on first use). HVNODE_TEST_ISO=FILE
 * uses that ISO instead (for working on one boot path without rebuilding).
 */
export async function testIso(): Promise<TestIso> {
  const given = process.env.HVNODE_TEST_ISO;
  if (given) return { iso: given, out: dirname(given), buildSeconds: 0 };
  const key = hashInputs();
  const out = join(ROOT, key);
  const iso = join(out, 'hvnode-test-0.1.0.iso');
  const tmpDir = join(ROOT, 'tmp');
  mkdirSync(ROOT, { recursive: true });
  return withLock(join(ROOT, 'lock'), async () => {
    if (existsSync(iso)) return { iso, out, buildSeconds: 0, tmpDir };
    // keep only the newest source tree's build
    for (const d of readdirSync(ROOT))
      if (d !== 'lock') rmSync(join(ROOT, d), { recursive: true, force: true });
    const tmpOut = `${out}.partial`;
    const t0 = performance.now();
    const r = await execa(
      'node',
      [cli('hvnode'), 'build', '--profile', 'test', '--out', tmpOut, '--tmpdir', tmpDir, '--json'],
      { reject: false, cwd: REPO },
    );
    if (r.exitCode !== 0) throw new Error(`building the test ISO failed:\n${r.stderr}`);
    // what the build printed, for the test of the build itself
    writeFileSync(join(tmpOut, 'stdout.json'), r.stdout);
    writeFileSync(join(tmpOut, 'stderr.txt'), r.stderr);
    renameSync(tmpOut, out);
    return { iso, out, buildSeconds: Math.round((performance.now() - t0) / 100) / 10, tmpDir };
  });
}

export interface IsoKernel {
  kernel: string;
  initrd: string;
  /** The default menu entry's kernel arguments (isolinux.cfg's first APPEND, without initrd=). */
  append: string;
}

/** Extracts an ISO's kernel and initrd into dir, for QEMU's -kernel/-initrd/-append boots. */
export async function isoKernel(iso: string, dir: string): Promise<IsoKernel> {
  for (const f of ['vmlinuz0', 'initrd0.img', 'isolinux.cfg'])
    await execa('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', `/isolinux/${f}`, join(dir, f)]);
  const cfg = readFileSync(join(dir, 'isolinux.cfg'), 'utf8');
  return {
    kernel: join(dir, 'vmlinuz0'),
    initrd: join(dir, 'initrd0.img'),
    append: /APPEND initrd=\S+ (.*)$/m.exec(cfg)?.[1] ?? '',
  };
}
