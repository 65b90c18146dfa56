// The pieces of a PXE boot tree that are plain text or bytes: what the ISO's isolinux menu says,
// the pxelinux menu and the iPXE script made from it (the newc cpio that carries the ISO inside
// the initrd, as livecd-iso-to-pxeboot did, is written by common/cpio.ts).

import { bootEntries, readLiveBoot, syslinuxConfig } from '../../common/index.ts';

/** What iso-to-pxeboot needs from the ISO's isolinux.cfg. */
export interface IsoMenu {
  title: string;
  /** Kernel arguments of the default entry without initrd= and root= (console=, rd.live.image, ...). */
  args: string[];
  timeoutSeconds: number;
}

/** Reads the title, timeout and the default entry's APPEND line of an isolinux/pxelinux config. */
export function parseIsolinuxConfig(text: string): IsoMenu | undefined {
  const boot = readLiveBoot(text);
  if (!boot) return undefined;
  return {
    title: boot.title ?? 'live image',
    args: boot.args.filter((a) => !a.startsWith('root=')),
    timeoutSeconds: boot.timeoutSeconds,
  };
}

/** Kernel arguments for the ISO carried in the initrd: dracut finds it at /<isoName> and loop-mounts it. */
export function tftpArgs(menu: IsoMenu, isoName: string): string {
  return [`root=live:/${isoName}`, 'rootflags=loop', ...menu.args].join(' ');
}

/**
 * Kernel arguments for an image fetched over HTTP: dracut's livenet module fetches the base layer
 * (squashfs.img), the hvnode-live module the list and the other layers beside it.
 */
export function httpArgs(menu: IsoMenu, squashfsUrl: string): string {
  const extra = menu.args.filter((a) => !['rd.live.image', 'ip=dhcp', 'rd.neednet=1'].includes(a));
  return [`root=live:${squashfsUrl}`, 'rd.live.image', 'ip=dhcp', 'rd.neednet=1', ...extra].join(' ');
}

/** pxelinux.cfg/default: the ISO's menu, booting the ISO from the initrd. */
export function pxelinuxConfig(menu: IsoMenu, isoName: string): string {
  return `# pxelinux: network boot of ${isoName} (written by hvnode iso-to-pxeboot)\n${syslinuxConfig({
    title: menu.title,
    entries: bootEntries(menu.title, tftpArgs(menu, isoName)),
    timeoutSeconds: menu.timeoutSeconds,
    extra: ['ONERROR LOCALBOOT 0'],
  })}`;
}

export const PLACEHOLDER_URL = 'http://pxe.example.invalid/hvnode';

/** boot.ipxe: the same menu, with kernel, initrd and the image's layers fetched from base-url. */
export function ipxeScript(menu: IsoMenu, p: { isoName: string; baseUrl: string }): string {
  const entries = bootEntries(menu.title, httpArgs(menu, '${base-url}/squashfs.img'));
  const placeholder = p.baseUrl === PLACEHOLDER_URL;
  const head = [
    '#!ipxe',
    `# ${menu.title}: HTTP boot of ${p.isoName} (written by hvnode iso-to-pxeboot)`,
    '# Serve this folder (vmlinuz0, initrd0.img, boot.ipxe, the layers: squashfs.img, and layers',
    '# with the others when there are more) over HTTP at base-url and point iPXE at it:',
    '# "chain <base-url>/boot.ipxe" (or DHCP filename = that URL).',
    '# The initramfs fetches the layers itself (dracut livenet, ip=dhcp): the node needs DHCP.',
    placeholder
      ? '# base-url is a PLACEHOLDER: edit the next line or rerun with --http-url URL.'
      : '# base-url: from --http-url.',
    `set base-url ${p.baseUrl}`,
    `menu ${menu.title}`,
    ...entries.map((e) => `item ${e.id} ${e.label}`),
    `choose --default ${entries[0]?.id} --timeout ${menu.timeoutSeconds * 1000} target || goto ${entries[0]?.id}`,
    'goto ${target}',
  ];
  const body = entries.map((e) =>
    [
      `:${e.id}`,
      `kernel \${base-url}/vmlinuz0 initrd=initrd0.img ${e.args}`,
      'initrd ${base-url}/initrd0.img',
      'boot || goto failed',
    ].join('\n'),
  );
  const tail = [
    ':failed',
    'echo hvnode: boot failed, check base-url (${base-url}) and the HTTP server',
    'shell',
  ];
  return `${head.join('\n')}\n\n${body.join('\n\n')}\n\n${tail.join('\n')}\n`;
}
