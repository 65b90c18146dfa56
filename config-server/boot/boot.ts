// What a node boots, and the boot configs the server generates for it per request: the pxelinux
// config served over TFTP (pxelinux.cfg/01-<mac>, pxelinux.cfg/default for unknown MACs) and the
// iPXE script of GET /v1/boot/:mac. Both carry BOOTIF (the booting NIC), config_server= (where
// the node fetches its bundle) and config_key= (the fingerprint of the key that must have
// signed it), so a node finds and trusts its bundle. Nothing secret goes into them: they are
// served to anyone on the network (a test checks the token, the private keys and the bundles).

import { readFile } from 'node:fs/promises';
import { httpArgs, type IsoMenu, tftpArgs } from '../../builder/index.ts';
import {
  bootEntries,
  normalizeMac,
  parseMac,
  pxelinuxMacName,
  readSyslinuxMenu,
  syslinuxConfig,
} from '../../common/index.ts';
import type { EffectiveBoot } from '../admin-api.ts';
import type { ImageRecord, Store } from '../store/types.ts';

/** The MAC's own profile, then its group's, then the default image. Unknown MACs get the default. */
export async function effectiveProfile(store: Store, mac: string): Promise<EffectiveBoot> {
  const own = await store.profiles.get(normalizeMac(mac, 'boot profile'));
  const group = own?.group === undefined ? undefined : await store.profiles.getGroup(own.group);
  // group arguments first, the node's after: on a kernel command line the later one wins
  const args = [...(group?.args ?? []), ...(own?.args ?? [])];
  const groupName = own?.group !== undefined ? { group: own.group } : {};
  if (own?.image !== undefined) return { image: own.image, args, source: 'node', ...groupName };
  if (group?.image !== undefined) return { image: group.image, args, source: 'group', ...groupName };
  const image = await store.images.getDefault();
  return { ...(image !== undefined ? { image } : {}), args, source: 'default', ...groupName };
}

/** What goes on every generated command line besides the image's and the profile's arguments. */
export interface BootContext {
  /** The config server's URL as nodes reach it (config_server=), e.g. https://10.0.0.1:8443. */
  configUrl: string;
  /** The server key's fingerprint (config_key=). */
  fingerprint: string;
  /** Where nodes fetch images/<V>/http/ over HTTP (iPXE); default configUrl. */
  bootUrl?: string;
}

function serverArgs(ctx: BootContext): string[] {
  return [`config_server=${ctx.configUrl.replace(/\/+$/, '')}`, `config_key=${ctx.fingerprint}`];
}

/** The image's menu: title and timeout from its pxelinux.cfg/default, arguments from its record. */
async function imageMenu(store: Store, image: ImageRecord): Promise<IsoMenu> {
  const cfg = await store.images.filePath(image.version, 'tftpboot', 'pxelinux.cfg/default');
  const menu = cfg === undefined ? {} : readSyslinuxMenu(await readFile(cfg, 'utf8'));
  return {
    title: menu.title ?? `hvnode ${image.version}`,
    args: image.kernelArgs.split(/\s+/).filter((a) => a && !a.startsWith('root=')),
    timeoutSeconds: Math.max(1, Math.ceil((menu.timeoutTenths ?? 50) / 10)),
  };
}

/** The profile's image record, or undefined when there is no image to boot. */
async function bootImage(store: Store, boot: EffectiveBoot): Promise<ImageRecord | undefined> {
  return boot.image === undefined ? undefined : store.images.get(boot.image);
}

const LOCAL_BOOT = (why: string) =>
  `# hvnode config server: ${why}\n# booting from the local disk\nDEFAULT local\nPROMPT 0\n\nLABEL local\n  LOCALBOOT 0\n`;

/**
 * The pxelinux config for a MAC (undefined: for unknown MACs, pxelinux.cfg/default). Paths are
 * relative to pxelinux.0's folder, the TFTP root: images/<version>/vmlinuz0. `IPAPPEND 2` makes
 * pxelinux add BOOTIF=01-<mac of the booting NIC>.
 */
export async function pxelinuxConfigFor(
  store: Store,
  mac: string | undefined,
  ctx: BootContext,
): Promise<string> {
  const who = mac === undefined ? 'unknown MACs' : mac;
  // an unknown MAC gets the default profile: the effective profile of a MAC nobody set
  const boot = mac === undefined ? await effectiveDefault(store) : await effectiveProfile(store, mac);
  const image = await bootImage(store, boot);
  if (!image)
    return LOCAL_BOOT(
      boot.image === undefined ? `no image for ${who} (no default image)` : `image ${boot.image} is gone`,
    );
  const menu = await imageMenu(store, image);
  const args = [tftpArgs(menu, image.isoName), ...serverArgs(ctx), ...boot.args].join(' ');
  const dir = `images/${image.version}`;
  const text = syslinuxConfig({
    title: menu.title,
    entries: bootEntries(menu.title, args),
    timeoutSeconds: menu.timeoutSeconds,
    kernel: `${dir}/vmlinuz0`,
    initrd: `${dir}/initrd0.img`,
    extra: ['ONERROR LOCALBOOT 0'],
  }).replace(/^( {2}APPEND .*)$/gm, '  IPAPPEND 2\n$1');
  return `# hvnode config server: image ${image.version} for ${who} (${boot.source} profile)\n${text}`;
}

async function effectiveDefault(store: Store): Promise<EffectiveBoot> {
  const image = await store.images.getDefault();
  return { ...(image !== undefined ? { image } : {}), args: [], source: 'default' };
}

/**
 * The iPXE script of GET /v1/boot/:mac: the image's http/ tree over HTTP (dracut's livenet
 * fetches the squashfs), BOOTIF for the MAC asked for.
 */
export async function ipxeScriptFor(store: Store, mac: string, ctx: BootContext): Promise<string> {
  const canon = normalizeMac(mac, 'boot script');
  const boot = await effectiveProfile(store, canon);
  const image = await bootImage(store, boot);
  if (!image)
    return `#!ipxe\n# hvnode config server: no image for ${canon}\necho hvnode: no image for ${canon}; booting from the local disk\nexit\n`;
  const menu = await imageMenu(store, image);
  const base = `${(ctx.bootUrl ?? ctx.configUrl).replace(/\/+$/, '')}/images/${image.version}/http`;
  const args = [
    'initrd=initrd0.img',
    httpArgs(menu, `${base}/squashfs.img`),
    `BOOTIF=${pxelinuxMacName(canon)}`,
    ...serverArgs(ctx),
    ...boot.args,
  ].join(' ');
  return [
    '#!ipxe',
    `# hvnode config server: image ${image.version} for ${canon} (${boot.source} profile)`,
    `kernel ${base}/vmlinuz0 ${args} || goto failed`,
    `initrd ${base}/initrd0.img || goto failed`,
    'boot || goto failed',
    ':failed',
    `echo hvnode: cannot boot image ${image.version} from ${base}`,
    'shell',
    '',
  ].join('\n');
}

/** pxelinux.0 and the modules it loads, looked for beside it (at the TFTP root). */
const ROOT_FILES = new Set([
  'pxelinux.0',
  'lpxelinux.0',
  'ldlinux.c32',
  'libcom32.c32',
  'libutil.c32',
  'menu.c32',
]);

/** Where a TFTP file name points: generated text, or a file of an image's tftpboot/ tree. */
export type TftpTarget = { kind: 'data'; data: Buffer } | { kind: 'file'; path: string };

/**
 * Maps a TFTP file name to what the server sends:
 * - pxelinux.cfg/01-<mac>: the MAC's config; pxelinux.cfg/default: the default profile's;
 * - images/<version>/<file>: that image's tftpboot/<file>;
 * - pxelinux.0 and its modules: the default image's (else any image's) copy;
 * - anything else: undefined (the TFTP server serves its root, or "file not found").
 */
export async function resolveTftp(
  store: Store,
  file: string,
  ctx: BootContext,
): Promise<TftpTarget | undefined> {
  const name = file.replace(/^\/+/, '');
  const cfg = /^pxelinux\.cfg\/(.+)$/.exec(name)?.[1];
  if (cfg !== undefined) {
    if (cfg === 'default') return text(await pxelinuxConfigFor(store, undefined, ctx));
    // only the 01-<mac> form: pxelinux also asks for its UUID and IP-prefix names first
    if (!/^01-/i.test(cfg)) return undefined;
    const mac = parseMac(cfg);
    return mac === undefined ? undefined : text(await pxelinuxConfigFor(store, mac, ctx));
  }
  const img = /^images\/([^/]+)\/(.+)$/.exec(name);
  if (img) {
    const path = await store.images.filePath(img[1] as string, 'tftpboot', img[2] as string);
    return path === undefined ? undefined : { kind: 'file', path };
  }
  if (ROOT_FILES.has(name)) {
    const versions = [await store.images.getDefault(), ...(await store.images.list()).map((i) => i.version)];
    for (const v of versions) {
      if (v === undefined) continue;
      const path = await store.images.filePath(v, 'tftpboot', name);
      if (path !== undefined) return { kind: 'file', path };
    }
  }
  return undefined;
}

function text(s: string): TftpTarget {
  return { kind: 'data', data: Buffer.from(s) };
}

/**
 * The TFTP server's resolve hook (createTftpServer({ resolve })): generated configs and image
 * files; undefined lets the server look in its root. `ctx` is read per request (a function),
 * so the key fingerprint and URL may be filled in after the server started.
 */
export function tftpResolver(
  store: Store,
  ctx: BootContext | (() => BootContext | Promise<BootContext>),
): (file: string) => Promise<Buffer | { path: string } | undefined> {
  return async (file) => {
    const target = await resolveTftp(store, file, typeof ctx === 'function' ? await ctx() : ctx);
    if (target === undefined) return undefined;
    // image files (an initrd with the ISO appended is hundreds of MiB) are streamed from disk
    return target.kind === 'data' ? target.data : { path: target.path };
  };
}
