// `hvnode build --verify-repro`: two builds with the same SOURCE_DATE_EPOCH in separate
// temporary directories, no stage cache, then sha256 of every output compared. When they
// differ, the first differing file is named, looking inside the ISO and inside whichever of its
// squashfs layers (LiveOS/*.img, common/layers.ts) differs.

import { createHash } from 'node:crypto';
import {
  createReadStream,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  renameSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { extractFromIso, LAYER_NAME, LAYERS_DIR, run } from '../../common/index.ts';
import { type BuildOptions, type BuildReport, buildImage, removeTree } from './build.ts';

export interface ReproOutput {
  name: string;
  a: string;
  b: string;
  sha256A: string;
  sha256B: string;
  identical: boolean;
  /** The first differing file inside, e.g. "LiveOS/top.img:/etc/machine-id". */
  firstDifference?: string;
}

export interface ReproReport {
  identical: boolean;
  sourceDateEpoch: string;
  outputs: ReproOutput[];
  builds: BuildReport[];
}

/** Makes a further output (PXE tree, disk image) from a built ISO, for comparison. */
export type DerivedOutput = {
  name: string;
  make: (iso: string, dir: string) => Promise<string>;
};

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** A tree's entries in byte order, each with what identifies its content. */
async function describeTree(dir: string, withTimes = true): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      const rel = `/${relative(dir, p)}`;
      const meta = `${st.mode.toString(8)} ${st.uid}:${st.gid}${withTimes ? ` ${Math.floor(st.mtimeMs / 1000)}` : ''}`;
      if (st.isSymbolicLink()) out.set(rel, `${meta} -> ${readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.set(rel, `${meta} dir`);
        await walk(p);
      } else if (st.isFile()) out.set(rel, `${meta} ${st.size} ${await sha256File(p)}`);
      else out.set(rel, `${meta} ${st.rdev}`);
    }
  };
  await walk(dir);
  return out;
}

/** The first path (in byte order) whose entry differs between two trees, with both entries. */
export async function firstTreeDifference(
  a: string,
  b: string,
  withTimes = true,
): Promise<{ path: string; a?: string; b?: string } | undefined> {
  const [ta, tb] = [await describeTree(a, withTimes), await describeTree(b, withTimes)];
  const paths = [...new Set([...ta.keys(), ...tb.keys()])].sort((x, y) =>
    Buffer.from(x) < Buffer.from(y) ? -1 : x === y ? 0 : 1,
  );
  for (const p of paths) if (ta.get(p) !== tb.get(p)) return { path: p, a: ta.get(p), b: tb.get(p) };
  return undefined;
}

/** A squashfs layer of the image, as a path in the ISO (/LiveOS/NAME.img). */
function layerPath(path: string): string | undefined {
  const [, dir, name = ''] = /^\/([^/]+)\/([^/]+)$/.exec(path) ?? [];
  return dir === LAYERS_DIR && LAYER_NAME.test(name) ? path.slice(1) : undefined;
}

/** Names the first differing file inside two ISOs, descending into the squashfs layer that differs. */
export async function explainIsoDifference(isoA: string, isoB: string, work: string): Promise<string> {
  const [da, db] = [join(work, 'iso-a'), join(work, 'iso-b')];
  for (const [iso, d] of [
    [isoA, da],
    [isoB, db],
  ] as const)
    await extractFromIso(iso, [['/', d]]);
  const diff = await firstTreeDifference(da, db);
  if (!diff) return 'the ISO metadata (every file inside is identical)';
  const layer = layerPath(diff.path);
  // a layer only one build has is a difference of the ISO's files
  if (!layer || diff.a === undefined || diff.b === undefined) return describe(diff);
  const [sa, sb] = [join(work, 'sq-a'), join(work, 'sq-b')];
  for (const [img, d] of [
    [join(da, layer), sa],
    [join(db, layer), sb],
  ] as const)
    await run('unsquashfs', ['-no-progress', '-quiet', '-d', d, img]);
  const inner = await firstTreeDifference(sa, sb);
  return inner ? `${layer}:${describe(inner)}` : `${layer} (its metadata; every file inside is identical)`;
}

function describe(d: { path: string; a?: string; b?: string }): string {
  return `${d.path} (first build: ${d.a ?? 'absent'}; second: ${d.b ?? 'absent'})`;
}

/** sha256 of a file, or of a tree's description (names, modes, owners, contents: what a server serves). */
async function sha256Output(path: string): Promise<string> {
  if (!lstatSync(path).isDirectory()) return sha256File(path);
  const h = createHash('sha256');
  for (const [p, d] of await describeTree(path, false)) h.update(`${p}\0${d}\n`);
  return h.digest('hex');
}

/** rename, or copy when the output folder is on another filesystem than the work tree. */
async function moveInto(src: string, dir: string): Promise<void> {
  for (const f of readdirSync(src)) {
    try {
      renameSync(join(src, f), join(dir, f));
    } catch {
      await run('cp', ['-a', join(src, f), dir]);
    }
  }
}

export async function verifyRepro(opts: BuildOptions, derived: DerivedOutput[] = []): Promise<ReproReport> {
  const sourceDateEpoch =
    opts.sourceDateEpoch ?? process.env.SOURCE_DATE_EPOCH ?? String(Math.floor(Date.now() / 1000));
  const tmpDir = opts.tmpDir ?? '/var/tmp';
  mkdirSync(tmpDir, { recursive: true });
  const base = mkdtempSync(join(tmpDir, 'hvnode-repro-'));
  try {
    const builds: BuildReport[] = [];
    const made: Record<string, string>[] = [];
    for (const side of ['a', 'b']) {
      opts.say(`--verify-repro: build ${side === 'a' ? '1' : '2'} of 2`);
      const dir = join(base, side);
      const report = await buildImage({
        ...opts,
        out: join(dir, 'out'),
        tmpDir: join(dir, 'tmp'),
        noStageCache: true,
        keepWorkdir: false,
        sourceDateEpoch,
      });
      builds.push(report);
      const outputs: Record<string, string> = { iso: report.iso };
      // the outputs made from the ISO take their timestamps from the same epoch
      const saved = process.env.SOURCE_DATE_EPOCH;
      process.env.SOURCE_DATE_EPOCH = sourceDateEpoch;
      try {
        for (const d of derived) outputs[d.name] = await d.make(report.iso, join(dir, d.name));
      } finally {
        if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
        else process.env.SOURCE_DATE_EPOCH = saved;
      }
      made.push(outputs);
    }
    const [a, b] = made as [Record<string, string>, Record<string, string>];
    const outputs: ReproOutput[] = [];
    for (const name of Object.keys(a)) {
      const [pa, pb] = [a[name] as string, b[name] as string];
      const [sha256A, sha256B] = [await sha256Output(pa), await sha256Output(pb)];
      const o: ReproOutput = { name, a: pa, b: pb, sha256A, sha256B, identical: sha256A === sha256B };
      if (!o.identical)
        o.firstDifference =
          name === 'iso'
            ? await explainIsoDifference(pa, pb, join(base, 'diff'))
            : lstatSync(pa).isDirectory()
              ? describe((await firstTreeDifference(pa, pb, false)) ?? { path: '/' })
              : 'the file differs';
      outputs.push(o);
    }
    const identical = outputs.every((o) => o.identical);
    if (identical) {
      // the first build's artifacts become the result
      mkdirSync(opts.out, { recursive: true });
      await moveInto(join(base, 'a', 'out'), opts.out);
    }
    return { identical, sourceDateEpoch, outputs, builds };
  } finally {
    removeTree(base);
  }
}
