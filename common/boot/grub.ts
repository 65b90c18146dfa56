// The GRUB side of the boot-menu model: what every hvnode GRUB menu looks like (the ISO's UEFI
// menu, iso-to-disk's menu, the installed node's A/B menu), GRUB's quoting, the grubenv block,
// and where an installed node keeps its GRUB (the builder makes the images, the node installs them).

import { HvError } from '../errors.ts';

/** Where the image keeps GRUB for installed disks: BOOTX64.EFI, core.img (i386-pc), boot.img. */
export const GRUB_PAYLOAD_DIR = '/usr/lib/hvnode/grub';
/** The menu's folder on an installed node's ESP. */
export const ESP_GRUB_DIR = '/grub';
/** The installed ESP's partition number: 1 is BIOS boot (the installed GRUB's BIOS image relies on it). */
export const ESP_PARTITION = 2;

/**
 * The installed GRUB images' embedded configs. They run before GRUB's normal mode, whose parser
 * alone knows `if`: plain commands only. UEFI: GRUB's root is the partition the image was loaded
 * from, the ESP. BIOS: the core image lives outside any filesystem, so its root is the boot disk
 * itself; the ESP is its second partition.
 */
export const INSTALLED_EARLY_CONFIG: Record<'x86_64-efi' | 'i386-pc', string> = {
  'x86_64-efi': `set prefix="(\${root})${ESP_GRUB_DIR}"\nconfigfile "\${prefix}/grub.cfg"\n`,
  'i386-pc': `set root="\${root},gpt${ESP_PARTITION}"\nset prefix="(\${root})${ESP_GRUB_DIR}"\nconfigfile "\${prefix}/grub.cfg"\n`,
};

/** GRUB quotes: single quotes, with ' written as '\\'' (as grub-mkconfig does). */
export function grubQuote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

/** Every hvnode GRUB menu starts this way: the serial console too, and the menu's timeout. */
export function grubMenuStart(comment: string, timeoutSeconds: number): string[] {
  return [
    `# ${comment}`,
    'serial --unit=0 --speed=115200',
    'terminal_input console serial',
    'terminal_output console serial',
    `set timeout=${Math.max(1, timeoutSeconds)}`,
  ];
}

/** One menuentry: its title, its id (what `default` names) and its commands. */
export function grubMenuEntry(label: string, id: string, commands: readonly string[]): string[] {
  return [`menuentry ${grubQuote(label)} --id ${id} {`, ...commands.map((c) => `  ${c}`), '}'];
}

/** One entry of a boot menu (GRUB or syslinux): id, title, kernel arguments. */
export interface BootEntry {
  id: string;
  label: string;
  args: string;
}

/**
 * oVirt Node's menu: Install or upgrade boots the live image (the default), then its variants.
 * `args` are the image's kernel arguments; each entry adds or changes a few.
 */
export function bootEntries(title: string, args: string): BootEntry[] {
  const serialOnly = args
    .split(/\s+/)
    .filter((a) => a && !/^console=tty\d*$/.test(a))
    .join(' ');
  const withArg = (extra: string) => `${args} ${extra}`.trim();
  return [
    { id: 'install', label: `Install or upgrade ${title}`, args },
    { id: 'basic-video', label: 'Install (basic video)', args: withArg('nomodeset') },
    {
      id: 'serial',
      label: 'Install (serial console)',
      args: serialOnly.includes('console=ttyS0') ? serialOnly : `${serialOnly} console=ttyS0,115200n8`,
    },
    { id: 'reinstall', label: 'Reinstall', args: withArg('reinstall') },
    { id: 'uninstall', label: 'Uninstall', args: withArg('uninstall') },
    { id: 'rescue', label: 'Rescue', args: withArg('rescue systemd.unit=rescue.target') },
  ];
}

export interface GrubMenu {
  entries: BootEntry[];
  timeoutSeconds: number;
  /** Paths as GRUB sees them on the boot medium. */
  kernel: string;
  initrd: string;
  /** Lines placed before the menu entries. */
  preamble?: string;
}

/** The live image's GRUB menu (the ISO's UEFI boot, iso-to-disk). */
export function grubConfig(m: GrubMenu): string {
  const lines = [
    ...grubMenuStart('GRUB: UEFI (and disk) boot of the live image', m.timeoutSeconds),
    'set default=0',
    ...(m.preamble ? [m.preamble.trimEnd()] : []),
    '',
  ];
  for (const e of m.entries)
    lines.push(...grubMenuEntry(e.label, e.id, [`linux ${m.kernel} ${e.args}`, `initrd ${m.initrd}`]));
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// grubenv: "# GRUB Environment Block\n", name=value lines, '#' up to 1024 bytes. GRUB rewrites
// the block in place, so its size never changes.

const GRUBENV_HEADER = '# GRUB Environment Block\n';
export const GRUBENV_SIZE = 1024;

export function formatGrubEnv(vars: Record<string, string>): Buffer {
  let text = GRUBENV_HEADER;
  for (const [k, v] of Object.entries(vars)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || /[\n\\]/.test(v))
      throw new HvError(`grubenv cannot hold ${k}=${JSON.stringify(v)}`);
    text += `${k}=${v}\n`;
  }
  if (Buffer.byteLength(text) > GRUBENV_SIZE)
    throw new HvError(`grubenv would be ${Buffer.byteLength(text)} bytes; GRUB's block is ${GRUBENV_SIZE}`);
  return Buffer.from(text.padEnd(GRUBENV_SIZE, '#'), 'latin1');
}

export function parseGrubEnv(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq > 0) vars[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return vars;
}
