// NodeConfig (schema and type) and the kernel command line that produces it.
export * from './cmdline.ts';
export * from './schema.ts';
