// node-runtime's public surface for the other components.

export {
  BUNDLE_CONFIG_NAME,
  BUNDLE_MAGIC,
  BUNDLE_NODE_KEY_NAME,
  type BundleLimits,
  DEFAULT_BUNDLE_LIMITS,
  generateNodeKey,
  generateSigningKey,
  type KeyPairPem,
  keyFingerprint,
  type OpenBundleOptions,
  type OpenedBundle,
  type OverlayEntry,
  type OverlayInput,
  openBundle,
  type PackBundleOptions,
  packBundle,
  packUploadArchive,
  readUploadArchive,
  trustedFingerprint,
  type UploadArchive,
  unpackOverlay,
} from './bundle/index.ts';
export * from './config/index.ts';
// the engine's host-register client and the config upload (the setup screens Engine and
// Config server run the same code as the stateless node and `hvnode-node upload`)
export { dmiUuid, fetchEngineCaFingerprint, registerWithEngine } from './engine/register.ts';
export {
  type DiskBusName,
  type DiskFact,
  diskBus,
  type NicFact,
  parseIpAddr,
  type SystemFacts,
  sshFingerprint,
  systemFacts,
} from './facts.ts';
// what the console installer and setup screens run (the same code as autoinstall and persist)
export { autoinstall, formatPlan, type InstallPlan, makePlan } from './install/autoinstall.ts';
export {
  checkDisksFree,
  type Disk,
  type DiskContents,
  describeContents,
  describeDisk,
  diskEnvFromEnv,
} from './install/disks.ts';
export { DEFAULT_SIZES, defaultSwapMiB, formatMiB, type Layout, planLayout } from './install/layout.ts';
export { runTool } from './install/run.ts';
export { readImageFiles, type SettingFile, settingsFiles, storeSettings } from './install/settings.ts';
export { activeSlot, findInstalled } from './install/upgrade.ts';
export { persistOptionsFromEnv, restorePersisted } from './persist.ts';
export * from './ready.ts';
export * from './release.ts';
export { nodeMac, statelessPathsFromEnv, uploadConfig } from './stateless/index.ts';
export {
  type ConfigStore,
  FILES_LIST,
  LOCK_NAME,
  type LockOptions,
  openStore,
  type StoredFile,
  type StoreTransaction,
  withLock,
} from './store/index.ts';
