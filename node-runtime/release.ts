// /etc/hvnode-release: which image this node runs, written by the builder
// (shell-style KEY=value lines, like os-release).

import { readFileSync } from 'node:fs';

export const RELEASE_FILE = '/etc/hvnode-release';

export interface ImageRelease {
  name: string;
  version: string;
  runtimeVersion?: string;
}

export function formatRelease(r: ImageRelease): string {
  const lines = [`NAME=${r.name}`, `VERSION=${r.version}`];
  if (r.runtimeVersion) lines.push(`RUNTIME_VERSION=${r.runtimeVersion}`);
  return `${lines.join('\n')}\n`;
}

export function parseRelease(text: string): Partial<ImageRelease> {
  const out: Partial<ImageRelease> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    const value = (m[2] ?? '').replace(/^(['"])(.*)\1$/, '$2');
    if (m[1] === 'NAME') out.name = value;
    else if (m[1] === 'VERSION') out.version = value;
    else if (m[1] === 'RUNTIME_VERSION') out.runtimeVersion = value;
  }
  return out;
}

export function readRelease(file = RELEASE_FILE): Partial<ImageRelease> {
  try {
    return parseRelease(readFileSync(file, 'utf8'));
  } catch {
    return {};
  }
}
