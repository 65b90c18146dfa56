// `hvnode iso-to-pxeboot`: make a PXE boot tree from a live ISO, as livecd-iso-to-pxeboot did.
// DIR/tftpboot: pxelinux with the ISO's menu, the kernel, and the initrd with the whole ISO
// appended as a gzip'd newc cpio (dracut loop-mounts /<iso-name>). DIR/http: the same kernel,
// the initrd with network support, the image's layers and an iPXE script: dracut's livenet
// fetches the base layer (squashfs.img), the hvnode-live module the list (`layers`, when the ISO
// has one) and the others beside it. The ISO's initrd0.img is the local one when the ISO has
// isolinux/initrd0-net.img: the http/ initrd is then it + that + a cpio of the image's files
// that initrd0-net.list names (common/netboot.ts); an older ISO's initrd has network support.
// The tree is built in a sibling temp folder and renamed into place: never half-written.

import {
  copyFileSync,
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants, createGzip } from 'node:zlib';
import {
  BASE_LAYER,
  type Command,
  CPIO_MAX_FILE,
  checkOutDir,
  cpioOfFile,
  cpioOfTree,
  dataError,
  ExitCode,
  extractFromIso,
  HvError,
  LAYERS_DIR,
  LAYERS_FILE,
  listIsoFiles,
  NET_INITRD,
  NET_INITRD_LIST,
  parseLayers,
  parseNetList,
  requireTools,
  withInterrupt,
} from '../../common/index.ts';
import { SYSLINUX_BIOS_DIR, SYSLINUX_MODULES } from '../iso/iso.ts';
import {
  type IsoMenu,
  ipxeScript,
  PLACEHOLDER_URL,
  parseIsolinuxConfig,
  pxelinuxConfig,
} from './pxeboot-files.ts';
import { extractMergedFiles } from './pxeboot-net.ts';

const WHERE = 'hvnode iso-to-pxeboot';
export const PXELINUX_DIR = '/usr/lib/PXELINUX';
const KERNEL = '/isolinux/vmlinuz0';
const INITRD = '/isolinux/initrd0.img';
const MENU = '/isolinux/isolinux.cfg';
const SQUASHFS = `/${LAYERS_DIR}/${BASE_LAYER}`;
export const LIVE_PARTS = [KERNEL, INITRD, MENU, SQUASHFS];

export interface PxebootOptions {
  iso: string;
  out: string;
  force?: boolean;
  /** Where DIR/http is served (boot.ipxe's base-url). */
  httpUrl?: string;
  signal?: AbortSignal;
}

export interface PxebootSummary {
  iso: string;
  out: string;
  isoName: string;
  httpUrl: string;
  seconds: number;
  /** Every file of the tree, relative to out, with its size. */
  files: { path: string; bytes: number }[];
}

/** The ISO's file name becomes a kernel argument (root=live:/NAME): keep it to safe characters. */
function checkIso(iso: string): string {
  if (!existsSync(iso) || !statSync(iso).isFile())
    throw dataError(
      existsSync(iso) ? `${iso} is not a file` : `${iso}: no such file`,
      WHERE,
      'give the path of a live ISO made by "hvnode build"',
    );
  const name = basename(iso);
  if (!/^[A-Za-z0-9._+-]+$/.test(name))
    throw dataError(
      `the ISO's file name "${name}" cannot go on a kernel command line (root=live:/${name})`,
      WHERE,
      'rename or copy it to a name of letters, digits and . _ + -',
    );
  if (statSync(iso).size > CPIO_MAX_FILE)
    throw dataError(`${iso} is larger than 4 GiB, which a newc cpio in the initrd cannot hold`, WHERE);
  return name;
}

function checkHttpUrl(url: string | undefined): string {
  if (url === undefined) return PLACEHOLDER_URL;
  if (!/^https?:\/\/[^\s/]+(\/\S*)?$/.test(url))
    throw dataError(
      `--http-url "${url}" is not an http:// or https:// URL`,
      WHERE,
      'e.g. --http-url http://10.0.0.1/hvnode',
    );
  return url.replace(/\/+$/, '');
}

function requireLiveParts(iso: string, files: Map<string, number>): void {
  if (files.size === 0)
    throw dataError(
      `${iso} is not an ISO 9660 image (xorriso found no files in it)`,
      WHERE,
      'give a live ISO made by "hvnode build"',
    );
  const missing = LIVE_PARTS.filter((p) => !files.has(p));
  if (missing.length > 0)
    throw dataError(
      `${iso} is not a live image: it has no ${missing.join(', ')}`,
      WHERE,
      `iso-to-pxeboot looks for ${LIVE_PARTS.join(', ')} (the layout "hvnode build" writes)`,
    );
}

/** Copies files out of the ISO without mounting it; they come out read-only, so make them 0644. */
function extract(iso: string, pairs: [string, string][], signal?: AbortSignal): Promise<void> {
  return extractFromIso(iso, pairs, { signal, where: WHERE, mode: 0o644 });
}

function copyPxelinux(tftpboot: string): void {
  const files: [string, string][] = [
    [PXELINUX_DIR, 'pxelinux.0'],
    ...SYSLINUX_MODULES.map((m): [string, string] => [SYSLINUX_BIOS_DIR, m]),
  ];
  for (const [dir, file] of files) {
    const src = join(dir, file);
    if (!existsSync(src))
      throw new HvError(`missing ${src}`, {
        where: WHERE,
        exitCode: ExitCode.precondition,
        hint: 'run "npm run setup" (as root), or: apt-get install pxelinux syslinux-common',
      });
    copyFileSync(src, join(tftpboot, file));
  }
}

/** The time of the cpio members made here: SOURCE_DATE_EPOCH, or the ISO's. */
function cpioTime(iso: string): number {
  const epoch = Number(process.env.SOURCE_DATE_EPOCH);
  return Number.isFinite(epoch) && epoch > 0 ? epoch : Math.floor(statSync(iso).mtimeMs / 1000);
}

/** Appends the ISO to the initrd as a gzip'd newc cpio member named /<isoName>. */
async function appendIso(initrd: string, iso: string, isoName: string, signal?: AbortSignal): Promise<void> {
  const st = statSync(iso);
  const mtime = cpioTime(iso);
  await pipeline(
    Readable.from(cpioOfFile(iso, { name: `/${isoName}`, size: st.size, mtime })),
    // the ISO is mostly squashfs (already compressed): the fastest level loses nothing
    createGzip({ level: constants.Z_BEST_SPEED }),
    createWriteStream(initrd, { flags: 'a' }),
    { signal },
  );
}

/**
 * Makes `initrd` (the ISO's local one) boot over the network when the ISO has the network part:
 * appends initrd0-net.img, then a gzip'd cpio of the image files initrd0-net.list names, taken
 * from the layers (in http/, bottom first). An older ISO (no initrd0-net.img) is left as it is.
 */
async function appendNetwork(
  o: PxebootOptions,
  files: Map<string, number>,
  initrd: string,
  layers: string[],
  work: string,
): Promise<void> {
  if (!files.has(`/${NET_INITRD}`)) return;
  if (!files.has(`/${NET_INITRD_LIST}`))
    throw dataError(
      `${o.iso} has /${NET_INITRD} but no /${NET_INITRD_LIST}`,
      WHERE,
      'rebuild the ISO with "hvnode build"',
    );
  const [net, list, tree] = [
    join(work, 'initrd0-net.img'),
    join(work, 'initrd0-net.list'),
    join(work, 'tree'),
  ];
  await extract(
    o.iso,
    [
      [`/${NET_INITRD}`, net],
      [`/${NET_INITRD_LIST}`, list],
    ],
    o.signal,
  );
  const origin = `${o.iso}:/${NET_INITRD_LIST}`;
  const paths = parseNetList(readFileSync(list, 'utf8'), origin);
  await extractMergedFiles(layers, paths, tree, { origin, work, where: WHERE, signal: o.signal });
  await pipeline(createReadStream(net), createWriteStream(initrd, { flags: 'a' }), { signal: o.signal });
  await pipeline(
    Readable.from(cpioOfTree(tree, paths, { mtime: cpioTime(o.iso) })),
    createGzip({ level: 6 }),
    createWriteStream(initrd, { flags: 'a' }),
    { signal: o.signal },
  );
}

async function readMenu(iso: string, tmp: string, signal?: AbortSignal): Promise<IsoMenu> {
  const cfg = join(tmp, 'isolinux.cfg');
  await extract(iso, [[MENU, cfg]], signal);
  const menu = parseIsolinuxConfig(readFileSync(cfg, 'utf8'));
  rmSync(cfg);
  if (!menu)
    throw dataError(
      `${iso}: ${MENU} has no boot entry with an APPEND line`,
      WHERE,
      'the kernel arguments are taken from its default entry',
    );
  return menu;
}

/**
 * The image's layers into http/: the base alone, or with the ISO's list (copied as http/layers)
 * every layer it names. Refuses a bad list or a listed layer the ISO lacks.
 */
async function extractLayers(
  iso: string,
  files: Map<string, number>,
  http: string,
  signal?: AbortSignal,
): Promise<[string, string][]> {
  const list = `/${LAYERS_FILE}`;
  if (!files.has(list)) return [[SQUASHFS, join(http, BASE_LAYER)]];
  await extract(iso, [[list, join(http, 'layers')]], signal);
  const names = parseLayers(readFileSync(join(http, 'layers'), 'utf8'), `${iso}:${list}`);
  const clash = names.find((n) => n === 'initrd0.img');
  if (clash)
    throw dataError(`${iso}: ${list} names a layer ${clash}, the name of the initrd in http/`, WHERE);
  const missing = names.filter((n) => !files.has(`/${LAYERS_DIR}/${n}`));
  if (missing.length > 0)
    throw dataError(
      `${iso}: ${list} names ${missing.join(', ')}, which the ISO does not hold`,
      WHERE,
      'rebuild the ISO with "hvnode build"',
    );
  return names.map((n): [string, string] => [`/${LAYERS_DIR}/${n}`, join(http, n)]);
}

/** Lays out tftpboot/ and http/ under tmp; `files` lists the ISO's files. */
async function buildTree(
  tmp: string,
  o: PxebootOptions,
  files: Map<string, number>,
  isoName: string,
  httpUrl: string,
): Promise<void> {
  const tftp = join(tmp, 'tftpboot');
  const http = join(tmp, 'http');
  mkdirSync(join(tftp, 'pxelinux.cfg'), { recursive: true });
  mkdirSync(http);
  const menu = await readMenu(o.iso, tmp, o.signal);
  const layers = await extractLayers(o.iso, files, http, o.signal);
  await extract(
    o.iso,
    [[KERNEL, join(tftp, 'vmlinuz0')], [INITRD, join(http, 'initrd0.img')], ...layers],
    o.signal,
  );
  copyFileSync(join(tftp, 'vmlinuz0'), join(http, 'vmlinuz0'));
  // the TFTP initrd boots the ISO it carries: the local initrd is enough
  copyFileSync(join(http, 'initrd0.img'), join(tftp, 'initrd0.img'));
  const work = join(tmp, 'net-work');
  try {
    const layerFiles = layers.map(([, dest]) => dest);
    await appendNetwork(o, files, join(http, 'initrd0.img'), layerFiles, work);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  await appendIso(join(tftp, 'initrd0.img'), o.iso, isoName, o.signal);
  copyPxelinux(tftp);
  writeFileSync(join(tftp, 'pxelinux.cfg', 'default'), pxelinuxConfig(menu, isoName));
  writeFileSync(join(http, 'boot.ipxe'), ipxeScript(menu, { isoName, baseUrl: httpUrl }));
}

/** Puts the finished tree at out; an old one (only with force) is renamed away first, then deleted. */
function commit(tmp: string, out: string, force: boolean): void {
  if (existsSync(out)) {
    if (!force) throw existingOut(out);
    const old = `${tmp}-old`;
    renameSync(out, old);
    try {
      renameSync(tmp, out);
    } catch (err) {
      renameSync(old, out);
      throw err;
    }
    rmSync(old, { recursive: true, force: true });
  } else renameSync(tmp, out);
}

function existingOut(out: string): HvError {
  return dataError(`${out} already exists`, WHERE, 'choose another --out, or add --force to replace it');
}

function listTree(root: string, dir = root): { path: string; bytes: number }[] {
  return readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .flatMap((e) => {
      const p = join(dir, e.name);
      return e.isDirectory() ? listTree(root, p) : [{ path: relative(root, p), bytes: statSync(p).size }];
    });
}

export async function isoToPxeboot(o: PxebootOptions): Promise<PxebootSummary> {
  const t0 = performance.now();
  const isoName = checkIso(o.iso);
  const httpUrl = checkHttpUrl(o.httpUrl);
  const out = resolve(o.out);
  if (existsSync(out) && (!o.force || !statSync(out).isDirectory()))
    throw o.force ? dataError(`${out} exists and is not a directory`, WHERE) : existingOut(out);
  await requireTools(['xorriso']);
  const files = await listIsoFiles(o.iso, { signal: o.signal, where: WHERE });
  requireLiveParts(o.iso, files);
  mkdirSync(dirname(out), { recursive: true });
  const tmp = mkdtempSync(join(dirname(out), `.${basename(out)}.partial-`));
  try {
    await buildTree(tmp, o, files, isoName, httpUrl);
    commit(tmp, out, o.force === true);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return {
    iso: resolve(o.iso),
    out,
    isoName,
    httpUrl,
    seconds: Math.round((performance.now() - t0) / 100) / 10,
    files: listTree(out),
  };
}

const HELP = `Usage: hvnode iso-to-pxeboot ISO --out DIR [--http-url URL] [--force] [--json]

Makes network-boot trees from a live ISO made by "hvnode build" (read with xorriso, not mounted):

DIR/tftpboot/  serve it over TFTP (DHCP filename pxelinux.0): pxelinux.0 and its modules,
               pxelinux.cfg/default (the ISO's menu, root=live:/ISO-NAME rootflags=loop plus
               the ISO's kernel arguments), vmlinuz0, and initrd0.img = the ISO's initrd with
               the whole ISO appended as a gzip'd cpio (the node holds the ISO in RAM: give it
               at least 2 GiB)
DIR/http/      for large deployments: serve it over HTTP at URL and chain URL/boot.ipxe from
               iPXE: vmlinuz0, initrd0.img, boot.ipxe and the image's layers: squashfs.img
               (fetched by dracut's livenet: root=live:URL/squashfs.img ip=dhcp rd.neednet=1)
               and, when the ISO has LiveOS/layers, that list (as layers) and the other layers
               it names (fetched by the initramfs from beside squashfs.img). initrd0.img is the
               ISO's local initrd (no network support) followed by the network part:
               isolinux/initrd0-net.img and a gzip'd cpio of the image files that
               isolinux/initrd0-net.list names, taken from the layers (topmost wins); an older
               ISO without initrd0-net.img has network support in its own initrd, used as it is

DIR is written in full or not at all (built beside it, then renamed into place).

  -o, --out DIR    the tree to write; refused when it exists, unless --force
  --http-url URL   where DIR/http will be served (default ${PLACEHOLDER_URL},
                   a placeholder to edit in boot.ipxe)
  -f, --force      replace an existing DIR
  --json           print the files written, with their sizes, as JSON`;

export const isoToPxebootCommand: Command = {
  name: 'iso-to-pxeboot',
  summary: 'make a PXE boot tree from a live ISO',
  help: HELP,
  args: ['ISO'],
  examples: [
    'hvnode iso-to-pxeboot dist/hvnode-0.1.0.iso --out /srv/pxe',
    'hvnode iso-to-pxeboot dist/hvnode-0.1.0.iso --out /srv/pxe --http-url http://boot.example.com/hvnode --force',
  ],
  exitStatus: [
    [0, 'the tree is written'],
    [1, 'a tool failed (nothing is left behind)'],
    [2, 'xorriso, unsquashfs or pxelinux is missing (or, not as root, an opaque folder in a layer)'],
    [
      65,
      'not a live ISO, a network list naming a file the layers lack or delete, a bad --http-url, or DIR exists (without --force)',
    ],
  ],
  options: {
    out: { type: 'string', short: 'o' },
    'http-url': { type: 'string' },
    force: { type: 'boolean', short: 'f' },
    json: { type: 'boolean' },
  },
  run: async ({ values, positionals }) => {
    const iso = positionals[0] as string;
    if (typeof values.out !== 'string' || values.out === '')
      throw dataError('missing --out DIR', WHERE, 'see "hvnode iso-to-pxeboot --help"');
    checkOutDir(values.out, WHERE);
    // Ctrl-C and SIGTERM stop the tools and the copy; the temp tree is removed on the way out
    const summary = await withInterrupt(
      (signal) =>
        isoToPxeboot({
          iso,
          out: values.out as string,
          force: values.force === true,
          httpUrl: values['http-url'] as string | undefined,
          signal,
        }),
      { where: WHERE },
    );
    if (values.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    else process.stdout.write(formatSummary(summary));
    return ExitCode.ok;
  },
};

function formatSummary(s: PxebootSummary): string {
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(1).padStart(7)} MiB`;
  const lines = s.files.map((f) => `${mib(f.bytes)}  ${join(s.out, f.path)}`);
  const note =
    s.httpUrl === PLACEHOLDER_URL
      ? '\nnote: http/boot.ipxe uses a placeholder base-url (see --http-url)'
      : '';
  return `${lines.join('\n')}\nwrote ${s.out} from ${s.isoName} in ${s.seconds} s${note}\n`;
}
