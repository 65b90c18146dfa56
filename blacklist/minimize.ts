// The blacklist minimizer: plan (one walk over the tree, then the dependency checks that may
// refuse removals), then apply. A dry run is the plan without the apply, so it reports exactly
// the same numbers.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type Diagnostic, ExitCode, HvError, Report, requireTools } from '../common/index.ts';
import { INFO, infoFiles, listedPaths, readStatus, type Stanza, writeStatusWithout } from './dpkg.ts';
import { readElfDeps } from './elf.ts';
import { compileGlob, type Glob, mayMatchBelow } from './glob.ts';
import { filterIcuData, findIcuLibraries, type IcuData, readIcuData, writeIcuData } from './icu.ts';
import { firmwareDirs, kernelTrees, readModulesDep, runDepmod } from './modules.ts';
import { DEFAULT_LIB_DIRS, ImageFs, ldSoConfDirs } from './rootfs.ts';
import { type Directive, parseRules, type Rule } from './rules.ts';

export interface MinimizeOptions {
  /** Plan and report, change nothing. */
  dryRun?: boolean;
  /** Rules that match nothing and refused removals are errors, and then nothing is changed. */
  strict?: boolean;
  /** Bytes of the tree before minimization: the group table then shows the size after each group. */
  sizeBefore?: number;
}

/** What one `## heading` group of rules removed, and the tree's size before and after it. */
export interface GroupResult {
  group: string;
  files: number;
  bytes: number;
  before?: number;
  after?: number;
}

export interface RuleResult {
  /** `file:line` of the rule. */
  rule: string;
  directive: Directive;
  pattern: string;
  force: boolean;
  group: string;
  files: number;
  bytes: number;
  /** droppkg: the packages removed from the database (`name:arch`). */
  packages?: string[];
  /** icu-drop: the items taken out of ICU's data package (their bytes are in `bytes`; files stay 0). */
  items?: number;
}

/** A removal that did not happen because something that stays needs the file. */
export interface Refusal {
  rule: string;
  file: string;
  consumer: string;
  reason: string;
}

export interface MinimizeReport {
  root: string;
  dryRun: boolean;
  strict: boolean;
  rules: RuleResult[];
  /** Per rule group, in the order the rules are applied; before/after when the tree size was given. */
  groups: GroupResult[];
  totals: { files: number; bytes: number; dirs: number; packages: number };
  refusals: Refusal[];
  warnings: Diagnostic[];
  errors: Diagnostic[];
  seconds: number;
}

/** Bad rules or a --strict violation: exit 65, with the report as far as it got. */
export class MinimizeError extends HvError {
  constructor(
    what: string,
    readonly report: MinimizeReport | undefined,
    diagnostics: Diagnostic[],
  ) {
    super(what, { where: 'hvnode minimize', exitCode: ExitCode.dataError, diagnostics });
  }
}

export const DEFAULT_RULES_DIR = path.join(path.dirname(new URL(import.meta.url).pathname), 'rules');

/** The rules `hvnode minimize` applies without --rules (rules/firmware.blacklist is opt-in). */
export function defaultRuleFiles(): string[] {
  return [path.join(DEFAULT_RULES_DIR, 'hvnode.blacklist')];
}

/** Reads and parses rule files; every syntax error of every file, or the rules. */
export function loadRules(ruleFiles: string[]): { rules: Rule[]; report: Report } {
  const report = new Report();
  const rules: Rule[] = [];
  for (const file of ruleFiles) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      report.error(`cannot read rule file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { file });
      continue;
    }
    const parsed = parseRules(text, file);
    rules.push(...parsed.rules);
    report.merge(parsed.report);
  }
  return { rules, report };
}

interface PathRule {
  rule: Rule;
  glob: Glob;
  keep: boolean;
}

interface Mark {
  depth: number;
  rule: Rule;
}

interface Removal {
  rule: Rule;
  bytes: number;
  link: boolean;
}

// Where executables and shared objects live: only files here are read as ELF consumers.
const LIB_BIN = /^\/(?:usr\/(?:local\/)?)?(?:s?bin|lib(?:exec|32|64|x32)?)\//;
// Names that are never ELF executables or shared objects: no need to even lstat them.
const NOT_ELF =
  /\.(?:py|pyc|pm|pl|pod|ko|ko\.xz|ko\.zst|ko\.gz|h|txt|conf|json|xml|html?|gz|xz|zst|bz2|mo|png|svg|pem|crt|a|la|pc|cmake|rules|service|socket|target|timer|mount|path|sh|rb|js|cfg|ini|ucode|bin|fw)$/;
const SHARED_OBJECT = /\.so(?:\.|$)/;
// Never descended into: on a live system they hold the kernel's views, not image files.
const VIRTUAL_DIRS = new Set(['/proc', '/sys', '/dev']);

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

/** Applies rule files to the image tree at `root`. Throws a MinimizeError (exit 65) before changing anything when the rules are invalid or, with `strict`, not clean. */
export async function minimize(
  root: string,
  ruleFiles: string[],
  opts: MinimizeOptions = {},
): Promise<MinimizeReport> {
  const t0 = process.hrtime.bigint();
  const dryRun = opts.dryRun === true;
  const strict = opts.strict === true;
  const absRoot = path.resolve(root);
  if (!fs.statSync(absRoot, { throwIfNoEntry: false })?.isDirectory())
    throw new HvError(`root file system "${root}" does not exist or is not a directory`, {
      where: 'hvnode minimize',
      exitCode: ExitCode.precondition,
    });
  const loaded = loadRules(ruleFiles);
  if (loaded.report.hasErrors)
    throw new MinimizeError('invalid blacklist rules', undefined, loaded.report.errors);
  const rules = loaded.rules;

  const img = new ImageFs(absRoot === '/' ? '' : absRoot);
  const warnings = new Report();
  const matched = new Set<Rule>();

  // Module and firmware rules become path rules, one per kernel tree / firmware directory.
  const trees = kernelTrees(img);
  const fwDirs = firmwareDirs(img);
  const pathRules: PathRule[] = [];
  for (const rule of rules) {
    const keep = rule.directive.endsWith('keep');
    if (rule.directive === 'drop' || rule.directive === 'keep')
      pathRules.push({ rule, glob: rule.glob, keep });
    const bases = rule.directive.startsWith('module-')
      ? trees.map((t) => `${t.dir}/kernel`)
      : rule.directive.startsWith('firmware-')
        ? fwDirs
        : [];
    for (const base of bases)
      pathRules.push({ rule, keep, glob: compileGlob(`${escapeGlob(base)}/${rule.glob.source}`) });
  }

  // droppkg: the packages' files become exact-path drops, found again by the walk.
  const pkgFiles = new Map<string, Rule>();
  const pkgDirs = new Set<string>();
  const droppedPkgs = new Map<Stanza, Rule>();
  const dropPkg = rules.filter((r) => r.directive === 'droppkg');
  const keepPkg = rules.filter((r) => r.directive === 'keeppkg');
  let stanzas: Stanza[] = [];
  if (dropPkg.length > 0 || keepPkg.length > 0) {
    stanzas = readStatus(img);
    const infoNames = img.list(INFO);
    const canonical = (p: string) => {
      const parent = img.resolve(path.posix.dirname(p));
      return parent ? `${parent.path === '/' ? '' : parent.path}/${path.posix.basename(p)}` : p;
    };
    for (const s of stanzas) {
      const keeper = keepPkg.find((r) => r.glob.re.test(s.name));
      const dropper = dropPkg.find((r) => r.glob.re.test(s.name));
      if (keeper) matched.add(keeper);
      if (!dropper) continue;
      matched.add(dropper);
      if (keeper) continue;
      droppedPkgs.set(s, dropper);
      for (const p of [...listedPaths(img, s), ...infoFiles(infoNames, s)]) {
        const c = canonical(p);
        const st = img.lstat(c);
        if (!st) continue;
        if (st.isDirectory()) pkgDirs.add(c);
        else if (st.isSymbolicLink() && img.lstat(img.resolve(c)?.path ?? c)?.isDirectory()) {
          // a listed directory that is a symlink here (/bin -> usr/bin on merged /usr) belongs to the system
        } else if (!pkgFiles.has(c)) pkgFiles.set(c, dropper);
      }
    }
  }

  // The walk: each path is tested once against the rules that can still match below its directory.
  const removal = new Map<string, Removal>();
  const plannedDirs: string[] = [];
  const candidates: string[] = [];
  let libraryRemoved = false;
  const walk = (dir: string, depth: number, drop?: Mark, keep?: Mark, active: PathRule[] = []) => {
    let allGone = true;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(img.host(dir) || '/', { withFileTypes: true });
    } catch (err) {
      warnings.warning(`cannot read ${dir || '/'}: ${(err as NodeJS.ErrnoException).code}`);
      return { allGone: false, any: true };
    }
    const d = depth + 1;
    for (const e of entries) {
      const p = `${dir}/${e.name}`;
      let ownDrop: Rule | undefined;
      let ownKeep: Rule | undefined;
      for (const r of active) {
        if (r.glob.segments !== d && r.glob.segments !== Number.POSITIVE_INFINITY) continue;
        if (r.keep ? ownKeep : ownDrop) continue;
        if (!r.glob.re.test(p)) continue;
        matched.add(r.rule);
        if (r.keep) ownKeep = r.rule;
        else ownDrop = r.rule;
      }
      ownDrop ??= pkgFiles.get(p);
      const dropM = ownDrop ? { depth: d, rule: ownDrop } : drop;
      const keepM = ownKeep ? { depth: d, rule: ownKeep } : keep;
      // the most specific rule wins; on the same path keep beats drop
      const gone = dropM !== undefined && (keepM === undefined || dropM.depth > keepM.depth);
      if (e.isDirectory()) {
        if (d === 1 && VIRTUAL_DIRS.has(p)) {
          allGone = false;
          continue;
        }
        const below = active.filter((r) => mayMatchBelow(r.glob, p, d + 1));
        const sub = walk(p, d, dropM, keepM, below);
        if (sub.allGone && (gone || (pkgDirs.has(p) && sub.any))) plannedDirs.push(p);
        else allGone = false;
      } else if (gone) {
        const link = e.isSymbolicLink();
        removal.set(p, { rule: dropM.rule, bytes: img.lstat(p)?.size ?? 0, link });
        // only these can take away something a binary loads: skip the ELF pass when none is removed
        if (SHARED_OBJECT.test(e.name) || (link && (d === 1 || LIB_BIN.test(p)))) libraryRemoved = true;
      } else {
        allGone = false;
        if (e.isFile() && LIB_BIN.test(p) && !NOT_ELF.test(e.name)) candidates.push(p);
      }
    }
    return { allGone, any: entries.length > 0 };
  };
  walk('', 0, undefined, undefined, pathRules);

  // Dependency checks: a removal that breaks something kept is refused (unless the rule says force).
  const refusals: Refusal[] = [];
  const refused: string[] = [];
  const forcedSeen = new Set<string>();
  const refuse = (file: string, consumer: string, reason: string): boolean => {
    const r = removal.get(file);
    if (!r) return false;
    if (r.rule.force) {
      if (!forcedSeen.has(file)) {
        forcedSeen.add(file);
        warnings.warning(`force: removing ${file} although ${consumer} needs it (${reason})`, {
          file: r.rule.file,
          line: r.rule.line,
        });
      }
      return false;
    }
    removal.delete(file);
    refused.push(file);
    refusals.push({ rule: r.rule.id, file, consumer, reason });
    return true;
  };

  for (const tree of trees) {
    const deps = readModulesDep(img, tree);
    const work = [...deps.keys()].filter((m) => !removal.has(m) && img.lstat(m) !== null);
    for (let m = work.pop(); m !== undefined; m = work.pop())
      for (const dep of deps.get(m) ?? [])
        if (refuse(dep, m, 'module dependency (modules.dep)')) work.push(dep);
  }

  if (libraryRemoved) {
    const confDirs = ldSoConfDirs(img);
    const gone = (p: string) => removal.has(p);
    const found = new Map<string, { path: string; chain: string[] } | undefined>();
    const lookup = (need: string, dirs: string[], consumer: string, after?: (p: string) => boolean) => {
      if (need.includes('/'))
        return img.resolve(need.startsWith('/') ? need : `${path.posix.dirname(consumer)}/${need}`, after);
      for (const dir of [...dirs, ...confDirs, ...DEFAULT_LIB_DIRS]) {
        const r = img.resolve(`${dir}/${need}`, after);
        if (r && img.lstat(r.path)?.isFile()) return r;
      }
      return undefined;
    };
    // consumers in path order, so that the consumer a refusal names does not depend on readdir order
    const work = candidates.sort().reverse();
    const seen = new Set<string>();
    for (let c = work.pop(); c !== undefined; c = work.pop()) {
      if (seen.has(c)) continue;
      seen.add(c);
      const st = img.lstat(c);
      if (!st?.isFile() || ((st.mode & 0o111) === 0 && !SHARED_OBJECT.test(c))) continue;
      const elf = readElfDeps(img.host(c));
      if (!elf) continue;
      const origin = path.posix.dirname(c);
      const dirs = elf.searchPath.map((d) => d.replace(/\$(?:\{ORIGIN\}|ORIGIN)/g, origin));
      const needs = elf.needed.map((n) => ({ need: n, why: `DT_NEEDED ${n}` }));
      if (elf.interpreter) needs.push({ need: elf.interpreter, why: `PT_INTERP ${elf.interpreter}` });
      for (const { need, why } of needs) {
        const key = `${need.includes('/') && !need.startsWith('/') ? origin : dirs.join(':')}|${need}`;
        if (!found.has(key)) found.set(key, lookup(need, dirs, c));
        const before = found.get(key);
        if (!before?.chain.some(gone)) continue;
        // another copy further down the search path is what the loader will find then
        if (lookup(need, dirs, c, gone)) continue;
        for (const file of before.chain) if (refuse(file, c, why)) work.push(file);
      }
    }
  }

  // A directory stays when anything below it stays.
  const dirs = new Set(plannedDirs);
  for (const f of refused)
    for (let p = path.posix.dirname(f); p !== '/' && dirs.delete(p); p = path.posix.dirname(p));

  // ICU's data package: items each library drops (a library the path rules remove is left alone)
  const icu = planIcu(img, rules, matched, (p) => removal.has(p));

  const perRule = new Map<Rule, { files: number; bytes: number; items?: number }>();
  let totalBytes = 0;
  for (const lib of icu)
    for (const [, { rule, bytes }] of lib.drop) {
      const acc = perRule.get(rule) ?? { files: 0, bytes: 0, items: 0 };
      acc.items = (acc.items ?? 0) + 1;
      acc.bytes += bytes;
      totalBytes += bytes;
      perRule.set(rule, acc);
    }
  for (const r of removal.values()) {
    const acc = perRule.get(r.rule) ?? { files: 0, bytes: 0 };
    acc.files++;
    acc.bytes += r.bytes;
    totalBytes += r.bytes;
    perRule.set(r.rule, acc);
  }
  const pkgsOf = (rule: Rule) =>
    [...droppedPkgs].filter(([, r]) => r === rule).map(([s]) => (s.arch ? `${s.name}:${s.arch}` : s.name));

  const violations = new Report();
  for (const rule of rules) {
    if (matched.has(rule)) continue;
    const what = rule.directive.endsWith('pkg')
      ? 'no package'
      : rule.directive.startsWith('icu-')
        ? 'no item of an ICU data library'
        : 'no file';
    const msg = `${rule.directive} ${rule.pattern}: matches ${what}`;
    const at = { file: rule.file, line: rule.line };
    if (strict) violations.error(msg, at);
    else warnings.warning(msg, at);
  }
  if (strict)
    for (const r of refusals) {
      const rule = rules.find((x) => x.id === r.rule);
      violations.error(`refused to remove ${r.file}: ${r.consumer} needs it (${r.reason})`, {
        file: rule?.file,
        line: rule?.line,
        hint: 'keep the file, or add "force" to the rule',
      });
    }

  const report: MinimizeReport = {
    root,
    dryRun,
    strict,
    rules: rules.map((rule) => {
      const acc = perRule.get(rule) ?? { files: 0, bytes: 0 };
      const result: RuleResult = {
        rule: rule.id,
        directive: rule.directive,
        pattern: rule.pattern,
        force: rule.force,
        group: rule.group,
        ...acc,
      };
      if (rule.directive === 'droppkg') result.packages = pkgsOf(rule);
      if (rule.directive === 'icu-drop') result.items = acc.items ?? 0;
      return result;
    }),
    groups: [],
    totals: { files: removal.size, bytes: totalBytes, dirs: dirs.size, packages: droppedPkgs.size },
    refusals: refusals.sort((a, b) => a.file.localeCompare(b.file)),
    warnings: [],
    errors: violations.errors,
    seconds: 0,
  };
  report.groups = groupTable(report.rules, opts.sizeBefore);
  const finish = () => {
    report.warnings = warnings.warnings;
    report.seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return report;
  };
  if (violations.hasErrors)
    throw new MinimizeError(
      'the rules are not clean (--strict): nothing was changed',
      finish(),
      report.errors,
    );

  if (!dryRun) {
    // the new ICU packages are made (with derb and genrb) before anything is changed
    const icuWrites: { file: string; data: IcuData; pkg: Buffer }[] = [];
    if (icu.some((lib) => lib.drop.size > 0))
      await requireTools(['derb', 'genrb'], 'hvnode minimize (ICU data)');
    for (const lib of icu)
      if (lib.drop.size > 0)
        icuWrites.push({
          file: img.host(lib.file),
          data: lib.data,
          pkg: await filterIcuData(lib.data, new Set(lib.drop.keys())),
        });
    for (const p of removal.keys()) fs.rmSync(img.host(p), { force: true });
    for (const w of icuWrites) writeIcuData(w.file, w.data, w.pkg);
    for (const p of plannedDirs) {
      if (!dirs.has(p)) continue;
      try {
        fs.rmdirSync(img.host(p));
      } catch (err) {
        warnings.warning(`could not remove directory ${p}: ${(err as NodeJS.ErrnoException).code}`);
      }
    }
    if (droppedPkgs.size > 0) writeStatusWithout(img, stanzas, new Set(droppedPkgs.keys()));
    for (const tree of trees) {
      if (![...removal.keys()].some((p) => p.startsWith(`${tree.dir}/`))) continue;
      const w = await runDepmod(img, tree.kver);
      if (w) warnings.warning(w);
    }
  }
  return finish();
}

interface IcuPlan {
  /** Image path of the library. */
  file: string;
  data: IcuData;
  /** Item name → the icu-drop rule that takes it and its bytes. */
  drop: Map<string, { rule: Rule; bytes: number }>;
}

/**
 * The ICU items each data library loses: an item goes when an icu-drop rule matches its name and
 * no icu-keep rule does (they all name the item itself, so keep beats drop).
 */
function planIcu(
  img: ImageFs,
  rules: Rule[],
  matched: Set<Rule>,
  removed: (p: string) => boolean,
): IcuPlan[] {
  const drops = rules.filter((r) => r.directive === 'icu-drop');
  const keeps = rules.filter((r) => r.directive === 'icu-keep');
  if (drops.length === 0 && keeps.length === 0) return [];
  const plans: IcuPlan[] = [];
  for (const file of findIcuLibraries(img, [...ldSoConfDirs(img), ...DEFAULT_LIB_DIRS])) {
    if (removed(file)) continue;
    const data = readIcuData(img.host(file));
    if (!data) continue;
    const drop = new Map<string, { rule: Rule; bytes: number }>();
    for (const item of data.items) {
      const keeper = keeps.find((r) => r.glob.re.test(item.name));
      const dropper = drops.find((r) => r.glob.re.test(item.name));
      if (keeper) matched.add(keeper);
      if (dropper) matched.add(dropper);
      if (dropper && !keeper) drop.set(item.name, { rule: dropper, bytes: item.data.length });
    }
    plans.push({ file, data, drop });
  }
  return plans;
}

const MiB = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

/** Bytes used by a tree (du -sxb), or undefined when du cannot tell. */
export function treeBytes(dir: string): number | undefined {
  const r = spawnSync('du', ['-sxb', dir], { encoding: 'utf8' });
  const n = Number(r.stdout?.split('\t')[0]);
  return r.status === 0 && Number.isFinite(n) ? n : undefined;
}

/** Sums the rules' removals per group, in rule order, with the running tree size. */
export function groupTable(rules: RuleResult[], sizeBefore?: number): GroupResult[] {
  const groups: GroupResult[] = [];
  for (const r of rules) {
    let g = groups.find((x) => x.group === r.group);
    if (!g) groups.push((g = { group: r.group, files: 0, bytes: 0 }));
    g.files += r.files;
    g.bytes += r.bytes;
  }
  if (sizeBefore !== undefined) {
    let size = sizeBefore;
    for (const g of groups) {
      g.before = size;
      size -= g.bytes;
      g.after = size;
    }
  }
  return groups;
}

/** The size table: one line per rule group. */
export function formatGroups(groups: GroupResult[]): string {
  const width = Math.max(5, ...groups.map((g) => g.group.length));
  const sized = groups.some((g) => g.before !== undefined);
  const head = `${'group'.padEnd(width)}  ${'files'.padStart(7)}  ${'removed'.padStart(11)}${sized ? `  ${'before'.padStart(11)}  ${'after'.padStart(11)}` : ''}`;
  const rows = groups.map(
    (g) =>
      `${g.group.padEnd(width)}  ${String(g.files).padStart(7)}  ${MiB(g.bytes).padStart(11)}${sized ? `  ${MiB(g.before ?? 0).padStart(11)}  ${MiB(g.after ?? 0).padStart(11)}` : ''}`,
  );
  return `${[head, ...rows].join('\n')}\n`;
}

/** The text report: one line per rule, then refusals, then totals. */
export function formatReport(r: MinimizeReport): string {
  const lines: string[] = [];
  const width = Math.max(0, ...r.rules.map((x) => x.rule.length));
  for (const x of r.rules) {
    const pkgs = x.packages && x.packages.length > 0 ? ` (${x.packages.length} package(s))` : '';
    const count =
      x.items !== undefined ? `${String(x.items).padStart(7)} items` : `${String(x.files).padStart(7)} files`;
    lines.push(
      `${x.rule.padEnd(width)}  ${`${x.directive} ${x.pattern}${x.force ? ' force' : ''}`.padEnd(48)} ${count} ${MiB(x.bytes).padStart(11)}${pkgs}`,
    );
  }
  lines.push('', formatGroups(r.groups).trimEnd(), '');
  for (const f of r.refusals)
    lines.push(`refused: ${f.file} (rule ${f.rule}): needed by ${f.consumer} (${f.reason})`);
  lines.push(
    `total: ${r.totals.files} files, ${r.totals.dirs} directories, ${MiB(r.totals.bytes)}${r.totals.packages ? `, ${r.totals.packages} package(s)` : ''} ${r.dryRun ? 'would be removed (dry run: nothing changed)' : 'removed'}; ${r.refusals.length} refusal(s), ${r.seconds.toFixed(2)} s`,
  );
  return `${lines.join('\n')}\n`;
}
