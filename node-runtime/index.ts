// node-runtime's public surface for the other components.
export * from './cli-kit.ts';
export * from './config/index.ts';
export * from './errors.ts';
export * from './ready.ts';
export * from './release.ts';
export * from './schema-errors.ts';
export * from './version.ts';
