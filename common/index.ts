// The shared kernel of every component: the report/error model, the CLI kit, schema error
// wording, the version, and the boot-menu model that both the ISO builder and the on-node
// installer write. Components import this file only, never a file inside common/.

export * from './boot/grub.ts';
export * from './boot/grub-bios.ts';
export * from './boot/syslinux.ts';
export * from './cli-docs.ts';
export * from './cli-kit.ts';
export * from './cpio.ts';
export * from './disk/table.ts';
export * from './errors.ts';
export * from './files.ts';
export * from './image-path.ts';
export * from './iso.ts';
export * from './layers.ts';
export * from './mac.ts';
export * from './mountinfo.ts';
export * from './netboot.ts';
export * from './run.ts';
export * from './schema-errors.ts';
export * from './signals.ts';
export * from './size.ts';
export * from './version.ts';
