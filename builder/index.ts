// builder's public surface for the other components (the config server runs iso-to-pxeboot).

export { isoToPxeboot, LIVE_PARTS, type PxebootOptions, type PxebootSummary } from './pxe/pxeboot.ts';
export {
  httpArgs,
  type IsoMenu,
  parseIsolinuxConfig,
  pxelinuxConfig,
  tftpArgs,
} from './pxe/pxeboot-files.ts';
