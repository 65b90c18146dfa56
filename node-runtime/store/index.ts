// The config store (/config): its layout, atomic replacement, recovery and lock.
export * from './config-store.ts';
export { type LockOptions, withLock } from './lock.ts';
