// What a benchmark section reports (rows), the results file bench-results/<date>.json and the
// markdown table on standard output.

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Timing } from './stats.ts';

export type Status = 'ok' | 'not built' | 'failed' | 'skipped';

export interface Row {
  section: string;
  /** What was measured, e.g. "minimize --dry-run". */
  what: string;
  status: Status;
  timing?: Timing;
  /** Paths processed per run: files/s is files / median. */
  files?: number;
  /** The target or peer, as shown: "≤ 1 s", "live-build 290 s". */
  compare?: string;
  /** Whether the target is met (undefined: no target for this row). */
  met?: boolean;
  notes?: string;
  /** Anything else worth keeping in the JSON (sizes, ratios, per-stage cache status). */
  data?: Record<string, unknown>;
}

export interface Results {
  date: string;
  host: { cpus: number; memGiB: number; node: string; loadavgAtStart: number[] };
  options: Record<string, unknown>;
  rows: Row[];
}

export function newResults(options: Record<string, unknown>): Results {
  return {
    date: new Date().toISOString(),
    host: {
      cpus: cpus().length,
      memGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      loadavgAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
    },
    options,
    rows: [],
  };
}

/** A row for a timing against an upper bound in seconds. */
export function timedRow(
  section: string,
  what: string,
  timing: Timing,
  extra: Partial<Row> & { targetSeconds?: number } = {},
): Row {
  const { targetSeconds, ...rest } = extra;
  const row: Row = { section, what, status: 'ok', timing, ...rest };
  if (targetSeconds !== undefined) {
    row.compare ??= `≤ ${targetSeconds} s`;
    row.met = timing.median <= targetSeconds;
  }
  return row;
}

/** A row for something that did not run or did not finish. */
export function statusRow(section: string, what: string, status: Status, notes?: string): Row {
  return { section, what, status, notes };
}

export const fmtSeconds = (s: number): string =>
  s >= 100 ? s.toFixed(0) : s >= 10 ? s.toFixed(1) : s >= 1 ? s.toFixed(2) : s.toFixed(3);
export const fmtMiB = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const fmtRate = (n: number): string => Math.round(n).toLocaleString('en-US');

function cells(r: Row): string[] {
  const t = r.timing;
  const status = r.status === 'ok' ? '' : r.status;
  return [
    r.section,
    r.what,
    t ? fmtSeconds(t.median) : status,
    t ? `${fmtSeconds(t.min)}–${fmtSeconds(t.max)} (n=${t.samples.length})` : '',
    t && r.files ? fmtRate(r.files / t.median) : '',
    r.compare ?? '',
    r.met === undefined ? '' : r.met ? 'yes' : 'NO',
    (r.notes ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' '),
  ];
}

export function markdownTable(rows: Row[]): string {
  const head = [
    'section',
    'measurement',
    'median s',
    'min–max s',
    'files/s',
    'target / peer',
    'met',
    'notes',
  ];
  const lines = [head, head.map(() => '---'), ...rows.map(cells)].map((c) => `| ${c.join(' | ')} |`);
  return `${lines.join('\n')}\n`;
}

const LINE_WIDTH = 110;
const isPrimitive = (v: unknown) => v === null || typeof v !== 'object';
const scalar = (v: unknown) =>
  typeof v === 'number' && !Number.isInteger(v) ? String(Math.round(v * 1e4) / 1e4) : JSON.stringify(v);

/**
 * JSON as the repository's formatter (biome) lays it out, so that `biome check .` stays clean
 * over bench-results/: objects expanded, arrays of scalars on one line when they fit. Fractions
 * are rounded to 4 decimals.
 */
export function formatJson(value: unknown, indent = 0, prefix = 0): string {
  if (isPrimitive(value)) return scalar(value);
  const pad = '  '.repeat(indent + 1);
  const close = '  '.repeat(indent);
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    const inline = `[${value.map(scalar).join(', ')}]`;
    if (value.every(isPrimitive) && prefix + inline.length + 1 <= LINE_WIDTH) return inline;
    return `[\n${value.map((v) => `${pad}${formatJson(v, indent + 1, pad.length)}`).join(',\n')}\n${close}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return '{}';
  const lines = entries.map(([k, v]) => {
    const key = `${pad}${JSON.stringify(k)}: `;
    return `${key}${formatJson(v, indent + 1, key.length)}`;
  });
  return `{\n${lines.join(',\n')}\n${close}}`;
}

/** Writes bench-results/<date>.json under repoDir; returns its path. */
export function writeResults(repoDir: string, results: Results): string {
  const dir = join(repoDir, 'bench-results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${results.date.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}.json`);
  writeFileSync(file, `${formatJson(results)}\n`);
  return file;
}
