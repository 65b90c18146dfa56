// builder's public surface for the other components (the config server runs iso-to-pxeboot).

// the runtime's units and the consoles' gate as the build installs them (the TUI's tests check the drop-ins)
export { CONSOLE_GATE, RUNTIME_UNITS } from './build/configure.ts';
// FAT images without mounting (the disk and ISO stages; tests check the fitted size)
export { fatFitKiB, makeFatImage } from './iso/grub.ts';
export { isoToPxeboot, LIVE_PARTS, type PxebootOptions, type PxebootSummary } from './pxe/pxeboot.ts';
export {
  httpArgs,
  type IsoMenu,
  parseIsolinuxConfig,
  pxelinuxConfig,
  tftpArgs,
} from './pxe/pxeboot-files.ts';
