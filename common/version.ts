// The runtime's own version: baked in by the bundler on the node, read from package.json in a checkout.

import { readFileSync } from 'node:fs';

declare const HVNODE_RUNTIME_VERSION: string | undefined;

export function runtimeVersion(): string {
  if (typeof HVNODE_RUNTIME_VERSION === 'string') return HVNODE_RUNTIME_VERSION;
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}
