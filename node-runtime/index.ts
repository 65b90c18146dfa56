// node-runtime's public surface for the other components.
export * from './config/index.ts';
export * from './ready.ts';
export * from './release.ts';
