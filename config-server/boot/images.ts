// `admin image add ISO`: the same code as `hvnode iso-to-pxeboot`, run into a work folder of the
// store (same file system: the trees are renamed into place), then handed to store.images.add.
// The version is read first (isolinux/version, else the menu title "NAME VERSION", else the file
// name), so a duplicate is refused before the long part.

import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { isoToPxeboot, LIVE_PARTS } from '../../builder/index.ts';
import { dataError, extractFromIso, listIsoFiles, readLiveBoot, requireTools } from '../../common/index.ts';
import { DirStore, IMAGE_VERSION } from '../store/dir-store.ts';
import type { ImageRecord, Store } from '../store/types.ts';

const WHERE = 'image add';

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** The version an ISO says it is. */
export function imageVersion(p: {
  versionFile?: string;
  title?: string;
  isoName: string;
}): string | undefined {
  const candidates = [
    p.versionFile?.trim(),
    p.title?.trim().split(/\s+/).at(-1),
    /-(\d[A-Za-z0-9._+-]*)\.iso$/i.exec(p.isoName)?.[1],
  ];
  return candidates.find((c) => c !== undefined && IMAGE_VERSION.test(c) && /\d/.test(c));
}

interface IsoFacts {
  version: string;
  label: string;
  kernelArgs: string;
}

/** Reads the version, volume label and default kernel arguments from the ISO's isolinux/. */
async function readIsoFacts(iso: string, work: string): Promise<IsoFacts> {
  const files = await listIsoFiles(iso, { where: WHERE });
  if (files.size === 0)
    throw dataError(`${iso} is not an ISO 9660 image`, WHERE, 'give a live ISO made by "hvnode build"');
  const missing = LIVE_PARTS.filter((p) => !files.has(p));
  if (missing.length > 0)
    throw dataError(
      `${iso} is not a live image: it has no ${missing.join(', ')}`,
      WHERE,
      'give a live ISO made by "hvnode build"',
    );
  const pairs: [string, string][] = [['/isolinux/isolinux.cfg', join(work, 'isolinux.cfg')]];
  if (files.has('/isolinux/version')) pairs.push(['/isolinux/version', join(work, 'version')]);
  await extractFromIso(iso, pairs, { where: WHERE, mode: 0o600 });
  const boot = readLiveBoot(readFileSync(join(work, 'isolinux.cfg'), 'utf8'));
  if (!boot) throw dataError(`${iso}: isolinux/isolinux.cfg has no boot entry with an APPEND line`, WHERE);
  const versionFile = pairs.length > 1 ? readFileSync(join(work, 'version'), 'utf8') : undefined;
  const version = imageVersion({ versionFile, title: boot.title, isoName: basename(iso) });
  if (!version)
    throw dataError(
      `cannot tell the version of ${iso}`,
      WHERE,
      'it is read from isolinux/version, the menu title ("NAME VERSION") or a file name like NAME-VERSION.iso',
    );
  const label = boot.args.map((a) => /^root=live:CDLABEL=(.+)$/.exec(a)?.[1]).find(Boolean) ?? '';
  return { version, label, kernelArgs: boot.args.join(' ') };
}

/** Adds the ISO's boot trees to the store; refuses a version already present. */
export async function addImage(
  store: Store,
  iso: string,
  o: { signal?: AbortSignal } = {},
): Promise<ImageRecord> {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(iso);
  } catch {
    throw dataError(`${iso}: no such file`, WHERE, 'give the path of a live ISO made by "hvnode build"');
  }
  if (!st.isFile()) throw dataError(`${iso} is not a file`, WHERE, 'give the path of a live ISO');
  await requireTools(['xorriso'], WHERE);
  const work =
    store instanceof DirStore ? store.tempDir('image-add') : mkdtempSync(join(tmpdir(), 'hvnode-image-'));
  try {
    const facts = await readIsoFacts(iso, work);
    if (await store.images.get(facts.version))
      throw dataError(
        `image ${facts.version} is in the store already`,
        WHERE,
        `remove it first ("image rm ${facts.version}") or add an ISO of another version`,
      );
    const tree = join(work, 'pxeboot');
    await isoToPxeboot({ iso, out: tree, signal: o.signal });
    const record: ImageRecord = {
      version: facts.version,
      isoName: basename(iso),
      label: facts.label,
      sha256: await sha256File(iso),
      kernelArgs: facts.kernelArgs,
      addedAt: new Date().toISOString(),
    };
    await store.images.add(record, tree);
    return record;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
