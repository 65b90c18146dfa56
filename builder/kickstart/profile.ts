// Build profiles: YAML files in kickstarts/profiles/, validated with ajv. Errors name the YAML
// path and the line it is on; an unknown key is an error that names the key.

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { isNode, LineCounter, parseDocument } from 'yaml';
import { dataError, describeSchemaError, ExitCode, HvError, Report } from '../../common/index.ts';
import { SIZE_PATTERN } from '../build/budgets.ts';

export type Compression = 'xz' | 'zstd';

export interface BuildProfile {
  /** Artifact base name: `<name>-<version>.iso`. */
  name: string;
  version: string;
  description?: string;
  /** debian: built with apt (mmdebstrap); fedora: built with dnf (builder/dnf.ts). */
  distro: 'debian' | 'fedora';
  /** Distribution release: a Debian codename, or dnf's releasever (`40`, `rawhide`). */
  release: string;
  arch: 'amd64';
  /** Package mirror; default: the build host's apt sources. */
  mirror?: string;
  /** Archive components for apt sources made from `mirror` or kickstart repos. */
  components: string[];
  /** ISO volume label, used by the live boot as `root=live:CDLABEL=<label>`. */
  label: string;
  /** Top kickstart template under kickstarts/. */
  kickstart: string;
  packages: string[];
  excludePackages: string[];
  /** Appended to the kernel command line (bootloader --append). */
  kernelArgs: string[];
  /** Seconds the boot menu waits before starting the default entry. */
  bootTimeout: number;
  timezone: string;
  lang: string;
  keyboard: string;
  compression: Compression;
  compressionLevel?: number;
  /** Minimization rule files: names in blacklist/rules/ (without .blacklist), applied after %post. */
  blacklist: string[];
  /** Extra chroot %post script, appended after the common one. */
  post?: string;
  sourceDateEpoch?: number;
  /** Size budgets: the build fails when an artifact is bigger (e.g. `iso: 150MB`). */
  budgets?: Partial<Record<'iso' | 'squashfs' | 'initrd', string | number>>;
}

const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'version', 'release', 'label', 'packages'],
  properties: {
    name: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' },
    version: { type: 'string', pattern: '^[0-9A-Za-z][0-9A-Za-z.+~_-]{0,63}$' },
    description: { type: 'string' },
    distro: { enum: ['debian', 'fedora'] },
    release: { type: 'string' },
    arch: { enum: ['amd64'] },
    mirror: { type: 'string', pattern: '^(https?|file)://[^\\s"\']+$' },
    components: { type: 'array', items: { type: 'string', pattern: '^[a-z0-9-]+$' }, minItems: 1 },
    label: { type: 'string', pattern: '^[A-Z0-9_-]{1,32}$' },
    kickstart: { type: 'string', pattern: '^[A-Za-z0-9._-]+\\.ks\\.hbs$' },
    packages: { type: 'array', minItems: 1, items: { $ref: '#/$defs/package' } },
    excludePackages: { type: 'array', items: { $ref: '#/$defs/package' } },
    kernelArgs: { type: 'array', items: { type: 'string', pattern: '^[^\\s"\']+$' } },
    bootTimeout: { type: 'integer', minimum: 0, maximum: 600 },
    timezone: { type: 'string', pattern: '^[A-Za-z0-9_+/-]+$' },
    lang: { type: 'string', pattern: '^[A-Za-z0-9_.@-]+$' },
    keyboard: { type: 'string', pattern: '^[A-Za-z0-9_-]+$' },
    compression: { enum: ['xz', 'zstd'] },
    compressionLevel: { type: 'integer', minimum: 1, maximum: 22 },
    blacklist: { type: 'array', items: { type: 'string', pattern: '^[A-Za-z0-9._-]+$' } },
    post: { type: 'string' },
    sourceDateEpoch: { type: 'integer', minimum: 0 },
    budgets: {
      type: 'object',
      additionalProperties: false,
      properties: Object.fromEntries(
        ['iso', 'squashfs', 'initrd'].map((k) => [
          k,
          {
            anyOf: [
              { type: 'integer', minimum: 1 },
              { type: 'string', pattern: SIZE_PATTERN },
            ],
          },
        ]),
      ),
    },
  },
  // a Debian codename, or dnf's releasever for the rpm distributions
  if: { properties: { distro: { const: 'fedora' } }, required: ['distro'] },
  then: { properties: { release: { type: 'string', pattern: '^([1-9][0-9]{0,3}|rawhide)$' } } },
  else: { properties: { release: { type: 'string', pattern: '^[a-z][a-z0-9-]{1,31}$' } } },
  $defs: {
    package: { type: 'string', pattern: '^[a-z0-9][a-z0-9+.-]*(:[a-z0-9]+)?$' },
  },
} as const;

const defaults = {
  distro: 'debian',
  arch: 'amd64',
  components: ['main'],
  kickstart: 'hvnode.ks.hbs',
  excludePackages: [],
  kernelArgs: [],
  bootTimeout: 3,
  timezone: 'UTC',
  lang: 'en_US.UTF-8',
  keyboard: 'us',
  compression: 'xz',
  blacklist: [],
} satisfies Partial<BuildProfile>;

// compiled on first use, not when a command starts (it takes a good part of hvnode's start-up)
let compiledValidate: ValidateFunction | undefined;

/** Parses and validates profile text; every problem is in the report, with its line. */
export function parseProfile(text: string, file: string): { profile?: BuildProfile; report: Report } {
  const report = new Report();
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  for (const e of doc.errors) {
    report.error(
      (e.message.split('\n')[0] ?? 'YAML syntax error').replace(/ at line \d+, column \d+:?$/, ''),
      {
        file,
        line: e.linePos?.[0]?.line,
        column: e.linePos?.[0]?.col,
      },
    );
  }
  if (report.hasErrors) return { report };
  const data: unknown = doc.toJS();
  compiledValidate ??= new Ajv({ allErrors: true, strict: true }).compile(schema);
  const validate = compiledValidate;
  if (!validate(data)) {
    // an if/then/else failure also reports the branch (the keyword below it says more), and a
    // type error in both the property and the branch comes twice
    const seen = new Set<string>();
    const errors = (validate.errors ?? []).filter((x) => {
      const key = `${x.instancePath}\0${x.keyword}\0${x.message}`;
      const first = x.keyword !== 'if' && !seen.has(key);
      seen.add(key);
      return first;
    });
    for (const e of errors) {
      const segments = e.instancePath.split('/').slice(1).map(decodeSegment);
      if (e.keyword === 'additionalProperties') {
        segments.push((e.params as { additionalProperty: string }).additionalProperty);
      }
      const pos = positionOf(doc, lineCounter, segments, e.keyword === 'additionalProperties');
      const path = `/${segments.join('/')}`;
      report.error(`${path === '/' ? 'profile' : path} ${describeSchemaError(e, true)}`, {
        file,
        line: pos?.line,
        column: pos?.col,
        hint:
          e.keyword === 'additionalProperties'
            ? `known keys: ${Object.keys(schema.properties).join(', ')}`
            : undefined,
      });
    }
    return { report };
  }
  return { profile: { ...defaults, ...(data as Partial<BuildProfile>) } as BuildProfile, report };
}

function decodeSegment(s: string): string | number {
  const t = s.replace(/~1/g, '/').replace(/~0/g, '~');
  return /^\d+$/.test(t) ? Number(t) : t;
}

/** Where the node at a path is (or its key, when `key` is set); falls back to the nearest parent. */
function positionOf(
  doc: ReturnType<typeof parseDocument>,
  lc: LineCounter,
  segments: (string | number)[],
  key: boolean,
): { line: number; col: number } | undefined {
  for (let n = segments.length; n >= 0; n--) {
    const path = segments.slice(0, n);
    let node: unknown;
    if (key && n === segments.length && n > 0) {
      const parent = doc.getIn(path.slice(0, -1), true);
      const pair =
        isNode(parent) && 'items' in parent ? findPair(parent.items as unknown[], path[n - 1]) : undefined;
      node = pair?.key;
    } else {
      node = n === 0 ? doc.contents : doc.getIn(path, true);
    }
    if (isNode(node) && node.range) return lc.linePos(node.range[0]);
  }
  return undefined;
}

function findPair(items: unknown[], name: string | number | undefined): { key: unknown } | undefined {
  for (const it of items) {
    const k = (it as { key?: unknown }).key;
    if (isNode(k) && 'value' in k && (k as { value: unknown }).value === name) return it as { key: unknown };
  }
  return undefined;
}

/** Loads a profile by path, or by name from kickstarts/profiles/ (`default` → default.yaml). */
export function loadProfile(
  pathOrName: string,
  profilesDir: string,
): { profile: BuildProfile; file: string } {
  const file = /[/.]/.test(pathOrName) ? pathOrName : `${profilesDir}/${pathOrName}.yaml`;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw dataError(
      `cannot read profile: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      file,
      `profiles are YAML files; the shipped ones are in ${profilesDir} (${basename(profilesDir)}/default.yaml, test.yaml)`,
    );
  }
  const { profile, report } = parseProfile(text, file);
  if (report.hasErrors) {
    throw new HvError('invalid build profile', {
      where: file,
      exitCode: ExitCode.dataError,
      diagnostics: report.errors,
      hint: 'see README.md, "Build profiles", for every key',
    });
  }
  return { profile: profile as BuildProfile, file };
}
