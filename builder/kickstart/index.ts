export * from './parser.ts';
export * from './types.ts';
