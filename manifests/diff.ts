// Compares two images' manifests: what release notes and reviewers want to know about an update.

import { byteSorted } from './owners.ts';
import type { Manifests, PackageInfo } from './types.ts';

export interface PackageRef {
  name: string;
  version: string;
  arch: string;
}

export interface ManifestDiff {
  a: string;
  b: string;
  packages: {
    added: PackageRef[];
    removed: PackageRef[];
    changed: Array<{ name: string; arch: string; from: string; to: string }>;
  };
  licenses: {
    /** Lines of manifest-license.txt only one side has. */
    added: string[];
    removed: string[];
    /** Packages on both sides whose licenses differ (only when both sides know them). */
    changed: Array<{ name: string; from: string[]; to: string[] }>;
  };
  /** Directories of the first two levels (and `/`) whose size differs, in KiB. */
  sizes: Array<{ path: string; from: number; to: number; delta: number }>;
  files: { added: string[]; removed: string[] };
}

/**
 * Packages are matched by name; a name installed for several architectures on either side is
 * matched by name and architecture.
 */
function keyer(a: PackageInfo[], b: PackageInfo[]): (p: PackageInfo) => string {
  const arches = new Map<string, Set<string>>();
  for (const p of [...a, ...b]) arches.set(p.name, (arches.get(p.name) ?? new Set()).add(p.arch));
  const multi = new Set([...a, ...b].filter((p) => (arches.get(p.name)?.size ?? 0) > 1).map((p) => p.name));
  return (p) => (multi.has(p.name) ? `${p.name}:${p.arch}` : p.name);
}

const ref = (p: PackageInfo): PackageRef => ({ name: p.name, version: p.version, arch: p.arch });
const sameList = (x: string[], y: string[]) => x.length === y.length && x.every((v, i) => v === y[i]);

export function diffManifests(a: Manifests, b: Manifests): ManifestDiff {
  const key = keyer(a.packages, b.packages);
  const pa = new Map(a.packages.map((p) => [key(p), p]));
  const pb = new Map(b.packages.map((p) => [key(p), p]));
  const keys = byteSorted([...new Set([...pa.keys(), ...pb.keys()])]);

  const packages: ManifestDiff['packages'] = { added: [], removed: [], changed: [] };
  const licenseChanges: ManifestDiff['licenses']['changed'] = [];
  for (const k of keys) {
    const x = pa.get(k);
    const y = pb.get(k);
    if (!x && y) packages.added.push(ref(y));
    else if (x && !y) packages.removed.push(ref(x));
    else if (x && y) {
      if (x.version !== y.version)
        packages.changed.push({ name: y.name, arch: y.arch, from: x.version, to: y.version });
      if (x.licenses.length > 0 && y.licenses.length > 0 && !sameList(x.licenses, y.licenses))
        licenseChanges.push({ name: y.name, from: x.licenses, to: y.licenses });
    }
  }

  const la = new Set(a.licenses);
  const lb = new Set(b.licenses);

  const levels = (m: Manifests) =>
    new Map(
      m.dirs.filter((d) => d.path === '/' || d.path.split('/').length <= 3).map((d) => [d.path, d.kib]),
    );
  const sa = levels(a);
  const sb = levels(b);
  const sizes = byteSorted([...new Set([...sa.keys(), ...sb.keys()])])
    .map((path) => {
      const from = sa.get(path) ?? 0;
      const to = sb.get(path) ?? 0;
      return { path, from, to, delta: to - from };
    })
    .filter((s) => s.delta !== 0);

  const fa = new Set(a.files.map((f) => f.path));
  const fb = new Set(b.files.map((f) => f.path));
  return {
    a: a.source,
    b: b.source,
    packages,
    licenses: {
      added: byteSorted([...lb].filter((l) => !la.has(l))),
      removed: byteSorted([...la].filter((l) => !lb.has(l))),
      changed: licenseChanges,
    },
    sizes,
    files: {
      added: byteSorted([...fb].filter((p) => !fa.has(p))),
      removed: byteSorted([...fa].filter((p) => !fb.has(p))),
    },
  };
}

const signed = (n: number) => (n > 0 ? `+${n}` : String(n));

/** Readable text of a diff; long file lists are cut (the JSON form has them all). */
export function formatDiff(d: ManifestDiff, maxFiles = 50): string {
  const out: string[] = [`--- ${d.a}`, `+++ ${d.b}`, ''];
  const { added, removed, changed } = d.packages;
  out.push(`Packages: ${added.length} added, ${removed.length} removed, ${changed.length} changed`);
  for (const p of added) out.push(`  + ${p.name} ${p.version} (${p.arch})`);
  for (const p of removed) out.push(`  - ${p.name} ${p.version} (${p.arch})`);
  for (const p of changed) out.push(`  ~ ${p.name} ${p.from} -> ${p.to} (${p.arch})`);

  const l = d.licenses;
  out.push(
    '',
    `Licenses: ${l.added.length} added, ${l.removed.length} removed, ${l.changed.length} package(s) changed`,
  );
  for (const x of l.added) out.push(`  + ${x}`);
  for (const x of l.removed) out.push(`  - ${x}`);
  for (const x of l.changed) out.push(`  ~ ${x.name}: ${x.from.join('; ')} -> ${x.to.join('; ')}`);

  out.push('', `Sizes (KiB, first two directory levels): ${d.sizes.length} changed`);
  const width = Math.max(0, ...d.sizes.map((s) => s.path.length));
  for (const s of d.sizes)
    out.push(
      `  ${s.path.padEnd(width)}  ${String(s.from).padStart(9)} -> ${String(s.to).padStart(9)}  (${signed(s.delta)})`,
    );

  out.push('', `Files: ${d.files.added.length} added, ${d.files.removed.length} removed`);
  const list = (sign: string, paths: string[]) => {
    for (const p of paths.slice(0, maxFiles)) out.push(`  ${sign} ${p}`);
    if (paths.length > maxFiles) out.push(`  ... and ${paths.length - maxFiles} more (see --json)`);
  };
  list('+', d.files.added);
  list('-', d.files.removed);
  return `${out.join('\n')}\n`;
}
