// node-runtime's public surface for the other components.
export * from './config/index.ts';
export * from './ready.ts';
export * from './release.ts';
export {
  type ConfigStore,
  FILES_LIST,
  LOCK_NAME,
  openStore,
  type StoredFile,
  type StoreTransaction,
} from './store/index.ts';
