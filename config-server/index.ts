// config-server's public surface for the other components.
export type * from './admin-api.ts';
export { LocalAdminApi, type LocalAdminOptions } from './admin-local.ts';
export {
  type BootContext,
  effectiveProfile,
  ipxeScriptFor,
  pxelinuxConfigFor,
  resolveTftp,
  type TftpTarget,
  tftpResolver,
} from './boot/boot.ts';
export { addImage, imageVersion } from './boot/images.ts';
export { DirStore, openDirStore } from './store/dir-store.ts';
export type * from './store/types.ts';
