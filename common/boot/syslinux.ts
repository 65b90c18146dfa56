// The syslinux side of the boot-menu model: the menu isolinux (the ISO's BIOS boot) and pxelinux
// (the PXE tree) show, written from the same entries as the GRUB menus, and read back from an
// ISO by iso-to-pxeboot and iso-to-disk.

import { type BootEntry, bootEntries } from './grub.ts';

/** A syslinux menu (isolinux on the ISO, pxelinux on the PXE tree) with the image's boot entries. */
export function syslinuxConfig(p: {
  title: string;
  entries: BootEntry[];
  timeoutSeconds: number;
  kernel?: string;
  initrd?: string;
  /** Extra lines at the end of the global section (e.g. ONERROR LOCALBOOT 0). */
  extra?: string[];
}): string {
  // TIMEOUT is in tenths of a second and 0 means "wait forever": never write 0
  const timeout = Math.max(1, p.timeoutSeconds * 10);
  const kernel = p.kernel ?? 'vmlinuz0';
  const initrd = p.initrd ?? 'initrd0.img';
  const head = [
    'SERIAL 0 115200',
    'UI menu.c32',
    'PROMPT 0',
    `TIMEOUT ${timeout}`,
    `MENU TITLE ${p.title}`,
    `DEFAULT ${p.entries[0]?.id ?? 'install'}`,
    ...(p.extra ?? []),
  ];
  const body = p.entries.map(
    (e, i) =>
      `LABEL ${e.id}\n  MENU LABEL ${e.label}\n${i === 0 ? '  MENU DEFAULT\n' : ''}  KERNEL ${kernel}\n  APPEND initrd=${initrd} ${e.args}\n`,
  );
  return `${head.join('\n')}\n\n${body.join('\n')}`;
}

/** The ISO's isolinux.cfg. */
export function isolinuxConfig(p: { title: string; args: string; timeoutSeconds: number }): string {
  return `# isolinux: BIOS boot of the live image\n${syslinuxConfig({
    title: p.title,
    entries: bootEntries(p.title, p.args),
    timeoutSeconds: p.timeoutSeconds,
  })}`;
}

/** What a syslinux menu (as syslinuxConfig writes it) says: title, TIMEOUT, the default entry's APPEND. */
export interface SyslinuxMenu {
  title?: string;
  /** TIMEOUT as written: tenths of a second. */
  timeoutTenths?: number;
  /** The default entry's APPEND words (the first entry's when DEFAULT names none); undefined without one. */
  append?: string[];
}

/** Reads a syslinux menu back. */
export function readSyslinuxMenu(text: string): SyslinuxMenu {
  const setting = (key: string) => new RegExp(`^\\s*${key}\\s+(.*?)\\s*$`, 'im').exec(text)?.[1];
  const entries = text
    .split(/^\s*LABEL\s+/im)
    .slice(1)
    .map((block) => ({
      id: block.split(/\s/)[0],
      append: /^\s*APPEND\s+(.*?)\s*$/im.exec(block)?.[1],
    }));
  const wanted = setting('DEFAULT');
  const append = (entries.find((e) => e.id === wanted) ?? entries[0])?.append;
  const timeout = setting('TIMEOUT');
  return {
    title: setting('MENU TITLE'),
    timeoutTenths: timeout === undefined ? undefined : Number(timeout),
    append: append?.split(/\s+/).filter(Boolean),
  };
}

/** A live ISO's default boot as its isolinux.cfg gives it; undefined when no entry has an APPEND. */
export interface LiveBoot {
  title?: string;
  /** The kernel arguments without the boot loader's own (initrd=, BOOT_IMAGE=). */
  args: string[];
  /** Whole seconds, at least 1 (5 when the menu gives none). */
  timeoutSeconds: number;
}

export function readLiveBoot(isolinuxCfg: string): LiveBoot | undefined {
  const menu = readSyslinuxMenu(isolinuxCfg);
  if (menu.append === undefined) return undefined;
  const tenths = menu.timeoutTenths;
  return {
    title: menu.title,
    args: menu.append.filter((a) => !/^(initrd|BOOT_IMAGE)=/.test(a)),
    timeoutSeconds: Math.max(
      1,
      Math.ceil((tenths !== undefined && Number.isFinite(tenths) ? tenths : 50) / 10),
    ),
  };
}
