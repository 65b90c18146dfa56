#!/usr/bin/env node
// Runs the TypeScript entry point in a checkout (through tsx); the node gets an esbuild bundle instead.
import { register } from 'tsx/esm/api';

register();
await import('../unpersist-cli.ts');
