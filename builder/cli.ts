// hvnode: the build host CLI.

import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  defaultRuleFiles,
  formatReport,
  MinimizeError,
  type MinimizeReport,
  minimize,
  treeBytes,
} from '../blacklist/index.ts';
import {
  type Command,
  checkOutDir,
  checkOutFile,
  closest,
  dataError,
  dispatch,
  docCommands,
  ExitCode,
  formatDiagnostic,
  HvError,
  type Program,
  readTextInput,
  runCli,
  runtimeVersion,
  STD_OPTIONS,
  STDIO,
  withInterrupt,
  writeTextOutput,
} from '../common/index.ts';
import {
  diffManifests,
  formatDiff,
  type Manifests,
  readManifests,
  writeManifests,
} from '../manifests/index.ts';
import { type BuildOptions, buildImage, KICKSTARTS_DIR, PROFILES_DIR } from './build/build.ts';
import { Progress } from './build/progress.ts';
import { type DerivedOutput, verifyRepro } from './build/repro.ts';
import { isoToDisk, isoToDiskCommand } from './disk/isotodisk.ts';
import { parseKickstart } from './kickstart/index.ts';
import { loadProfile } from './kickstart/profile.ts';
import { isoToPxeboot, isoToPxebootCommand } from './pxe/pxeboot.ts';

/** The outputs made from the ISO that --verify-repro also compares. */
const derivedOutputs: DerivedOutput[] = [
  {
    name: 'pxe',
    make: async (iso, dir) => (await isoToPxeboot({ iso, out: dir })).out,
  },
  {
    name: 'disk',
    make: async (iso, dir) => {
      mkdirSync(dir, { recursive: true });
      const target = join(dir, 'disk.img');
      await isoToDisk({
        iso,
        target,
        scheme: 'gpt',
        resetMbr: false,
        force: true,
        epoch: process.env.SOURCE_DATE_EPOCH,
        say: () => {},
      });
      return target;
    },
  },
];

import { renderKickstart } from './kickstart/render.ts';

/** A profile name (kickstarts/profiles/NAME.yaml) or a path; an unknown name lists the profiles. */
function profileArg(v: unknown, cmd: string): string {
  const given = requireString(v, '--profile', cmd);
  const where = `hvnode ${cmd}`;
  if (/[/.]/.test(given)) {
    readTextInput(given, where, 'build profile (YAML)');
    return given;
  }
  if (!existsSync(join(PROFILES_DIR, `${given}.yaml`))) {
    const names = readdirSync(PROFILES_DIR)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => f.slice(0, -5))
      .sort();
    const near = closest(given, names);
    throw dataError(
      `no profile "${given}"`,
      where,
      `${near ? `did you mean "${near}"? ` : ''}profiles: ${names.join(', ')} (in ${PROFILES_DIR}), or the path of a YAML file`,
    );
  }
  return given;
}

/** Refuses the running system's root (also through symlinks and bind mounts: same device and inode). */
function refuseHostRoot(rootfs: string, where: string): void {
  const stat = (p: string) => {
    try {
      return statSync(p);
    } catch (err) {
      if (p === rootfs && (err as NodeJS.ErrnoException).code === 'EACCES')
        throw dataError(`ROOTFS ${rootfs}: permission denied`, where, 'give the root of an image tree');
      return undefined;
    }
  };
  const st = stat(rootfs);
  if (!st) return;
  for (const root of ['/', '/proc/1/root']) {
    const r = stat(root);
    if (r && r.dev === st.dev && r.ino === st.ino)
      throw dataError(
        `ROOTFS ${rootfs} is the root of the running system`,
        where,
        'give the root of an image tree; --allow-host-root minimizes this host itself (it removes its files)',
      );
  }
}

function requireFolder(path: string, what: string, where: string): void {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st?.isDirectory())
    throw dataError(
      `${what} ${path}: ${st ? 'is not a folder' : 'no such folder'}`,
      where,
      `give the ${what} folder`,
    );
}

const ksCheck: Command = {
  name: 'check',
  summary: 'validate a kickstart file (and everything it %includes)',
  args: ['FILE'],
  help: `Usage: hvnode ks check FILE [--verbose] [--strict] [--json]

Validates the kickstart FILE (- reads standard input) and every file it %includes; problems
are printed on standard error as FILE:LINE: severity: message lines. An empty kickstart is a
warning.

  --verbose  also warn about each command the builder keeps but does not act on (valid
             kickstart: anaconda's commands such as autopart or network), with a summary
  --strict   every warning is an error (exit 65): deprecated commands and options, commands
             the builder does not act on
  --json     print {"file", "valid", "errors": [...], "warnings": [...]} on standard output`,
  examples: [
    'hvnode ks check my.ks --verbose',
    'hvnode ks check --strict fedora-live-base.ks',
    'hvnode render --profile test | hvnode ks check -',
  ],
  exitStatus: [
    [0, 'the kickstart is valid (warnings may be printed; --strict: and has none)'],
    [65, 'it is not (FILE:LINE: error: lines), or FILE cannot be read as text'],
  ],
  options: { verbose: STD_OPTIONS.verbose, strict: { type: 'boolean' }, json: STD_OPTIONS.json },
  run: async ({ values, positionals }) => {
    const given = positionals[0] as string;
    const file = given === STDIO ? '<stdin>' : given;
    const text = readTextInput(given, 'hvnode ks check', 'kickstart file');
    const { kickstart, report } = parseKickstart(text, {
      file,
      reportNotActedOn: values.verbose === true || values.json === true,
      strict: values.strict === true,
    });
    if (kickstart.commands.length === 0 && !kickstart.packages && kickstart.scripts.length === 0)
      report.warning('the kickstart is empty (no commands, %packages or scripts)', {
        file,
        hint: 'see "hvnode render --profile default" for a complete one',
      });
    const kept = kickstart.commands.filter((c) => !c.actedOn);
    if (values.json) {
      process.stdout.write(
        `${JSON.stringify({ file, valid: !report.hasErrors, errors: report.errors, warnings: report.warnings, kept: kept.map((c) => ({ file: c.file, line: c.line, name: c.name })) }, null, 2)}\n`,
      );
    } else {
      for (const d of report.sorted()) process.stderr.write(`${formatDiagnostic(d)}\n`);
      if (values.verbose) {
        process.stdout.write(
          `${kickstart.files.length} file(s), ${kickstart.commands.length} command(s) (${kept.length} kept but not acted on), ${kickstart.packages ? kickstart.packages.include.length : 0} package item(s), ${kickstart.scripts.length} script(s)\n`,
        );
      }
    }
    return report.hasErrors ? ExitCode.dataError : ExitCode.ok;
  },
};

const manifestWrite: Command = {
  name: 'write',
  summary: 'write the manifests and the SBOM of a rootfs',
  args: ['ROOTFS'],
  help: `Usage: hvnode manifest write ROOTFS --out DIR [--name NAME] [--created TIME] [--json]

Reads the rpm or Debian package database and the tree of ROOTFS and writes to DIR
manifest-rpm.txt, manifest-srpm.txt, manifest-license.txt, manifest-owns.txt.bz2,
manifest-file.txt.bz2, manifest-dir.txt.bz2, manifest.json and NAME.spdx.json (SPDX 2.3).

  --out DIR       output folder (created if missing)
  --name NAME     image name for the SBOM (default hvnode)
  --created TIME  SBOM creation time, ISO 8601 (default 1970-01-01T00:00:00Z);
                  SOURCE_DATE_EPOCH, when set, wins
  --json          print {"files": [...]} instead of one path a line`,
  examples: ['hvnode manifest write /var/tmp/rootfs --out manifests --name node1'],
  exitStatus: [
    [0, 'written'],
    [2, 'bzip2 is missing'],
    [65, 'ROOTFS is not a folder or has no package database; DIR is not a folder'],
  ],
  options: {
    out: STD_OPTIONS.out,
    name: { type: 'string' },
    created: { type: 'string' },
    json: STD_OPTIONS.json,
  },
  run: async ({ values, positionals }) => {
    const where = 'hvnode manifest write';
    const rootfs = positionals[0] as string;
    const out = requireString(values.out, '--out', 'manifest write');
    requireFolder(rootfs, 'ROOTFS', where);
    checkOutDir(out, where);
    const { files } = await writeManifests(rootfs, out, {
      name: typeof values.name === 'string' ? values.name : 'hvnode',
      created: values.created as string | undefined,
    });
    process.stdout.write(
      values.json ? `${JSON.stringify({ files }, null, 2)}\n` : files.map((f) => `${f}\n`).join(''),
    );
    return ExitCode.ok;
  },
};

const manifestDiff: Command = {
  name: 'diff',
  summary: 'compare the manifests of two images',
  args: ['A', 'B'],
  help: `Usage: hvnode manifest diff A B [--json] [--exit-code]

Compares two images; A and B are folders holding manifests or live ISOs (isolinux/manifest-*):
packages added, removed and changed, licenses, directory sizes, files.

  --json       print the difference as JSON
  --exit-code  exit 1 when the images differ, 0 when they are the same (for release pipelines)`,
  examples: [
    'hvnode manifest diff dist/old.iso dist/hvnode-0.1.0.iso',
    'hvnode manifest diff old/ new/ --json --exit-code > diff.json',
  ],
  exitStatus: [
    [0, 'compared (with --exit-code: the images are the same)'],
    [1, 'with --exit-code: the images differ'],
    [2, 'xorriso is missing (to read an ISO)'],
    [65, 'A or B is not a manifest folder or a live ISO'],
  ],
  options: { json: STD_OPTIONS.json, 'exit-code': { type: 'boolean' } },
  run: async ({ values, positionals }) => {
    const [a, b] = await Promise.all(positionals.map((p) => readManifests(p)));
    const d = diffManifests(a as Manifests, b as Manifests);
    process.stdout.write(values.json ? `${JSON.stringify(d, null, 2)}\n` : formatDiff(d));
    const lists = [
      ...Object.values(d.packages),
      ...Object.values(d.licenses),
      d.sizes,
      ...Object.values(d.files),
    ] as unknown[][];
    const differ = lists.some((l) => l.length > 0);
    return values['exit-code'] && differ ? ExitCode.failure : ExitCode.ok;
  },
};

const commands: Command[] = [
  {
    name: 'render',
    summary: 'render a build profile into one flat kickstart',
    args: [],
    help: `Usage: hvnode render --profile P [--out FILE]

  --profile P     profile name in kickstarts/profiles/ (default, test) or a path to a YAML file
  -o, --out FILE  write to FILE (atomically) instead of standard output (- is standard output)`,
    examples: [
      'hvnode render --profile default',
      'hvnode render --profile test --out test.ks',
      'hvnode render --profile ./site.yaml --out - | hvnode ks check -',
    ],
    exitStatus: [
      [0, 'rendered'],
      [65, 'the profile is invalid or unknown, or FILE cannot be written (a folder, a missing folder)'],
    ],
    options: { profile: { type: 'string', short: 'p' }, out: STD_OPTIONS.out },
    run: async ({ values }) => {
      const out = typeof values.out === 'string' ? values.out : STDIO;
      if (out !== STDIO) checkOutFile(out, 'hvnode render');
      const { profile, file } = loadProfile(profileArg(values.profile, 'render'), PROFILES_DIR);
      const text = renderKickstart({ profile, profileFile: file, kickstartsDir: KICKSTARTS_DIR });
      writeTextOutput(out, text, 'hvnode render', '--out', 0o600); // it may hold rootpw / user --password
      return ExitCode.ok;
    },
  },
  {
    name: 'ks',
    summary: 'kickstart tools: "hvnode ks check FILE"',
    commands: [ksCheck],
  },
  {
    name: 'build',
    summary: 'build a live ISO from a build profile',
    args: [],
    help: `Usage: hvnode build --profile P --out DIR [--cache DIR] [--tmpdir DIR] [--keep-workdir]
                    [--no-stage-cache] [--single-layer] [--source-date-epoch N] [--verify-repro]
                    [--verbose] [--quiet] [--json]

Writes DIR/<name>-<version>.iso (under a temporary name until complete), the flat kickstart
DIR/<name>-<version>.ks, DIR/build-report.json, DIR/SHA256SUMS (sha256sum -c checks the
artifacts) and the tools' output in DIR/<name>-<version>.build.log.
Runs as root (mmdebstrap, chroot, mount namespaces).

  --profile P       profile name in kickstarts/profiles/ (default, test) or a path to a YAML file
  -o, --out DIR     output folder (created if missing)
  --cache DIR       downloaded packages are kept here between builds
                    (default $XDG_CACHE_HOME/hvnode, else ~/.cache/hvnode)
  --tmpdir DIR      where the work tree goes (default /var/tmp; needs a few GiB)
  --keep-workdir    keep the work tree (rootfs and ISO tree) for inspection
  --no-stage-cache  run every stage (by default the rootfs stage and the base layer are reused from
                    DIR/stages in the cache when their inputs are unchanged: packages, repository
                    metadata, dracut module; for the base layer also the rules and compression)
  --single-layer    one squashfs (LiveOS/squashfs.img) instead of the layers (LiveOS/layers: the
                    base with the packages, the top with what configure, %post and the rules
                    change); for tools that expect one squashfs. Every build compresses it whole
  --source-date-epoch N
                    fix every timestamp, UUID and volume id (default: $SOURCE_DATE_EPOCH, then the
                    profile's sourceDateEpoch)
  --verify-repro    build twice in separate temporary directories with the same epoch and no stage
                    cache, compare sha256 of the ISO; exit 1 naming the first differing file inside
                    when they differ, else keep the first build's output in DIR
  -v, --verbose     show the tools' output as it comes
  -q, --quiet       print nothing but errors (and the --json report)
  --json            print the build report as JSON on standard output`,
    examples: [
      'hvnode build --profile default --out dist',
      'hvnode build --profile test --out /tmp/t --json --quiet > report.json',
      'cd dist && sha256sum -c SHA256SUMS',
    ],
    exitStatus: [
      [0, 'built'],
      [
        1,
        'a stage failed (its tool and last lines are named), a budget is exceeded, or --verify-repro found a difference',
      ],
      [2, 'not root, or a tool is missing'],
      [65, 'the profile, its kickstart or an option is invalid'],
    ],
    options: {
      profile: { type: 'string', short: 'p' },
      out: STD_OPTIONS.out,
      cache: { type: 'string' },
      tmpdir: { type: 'string' },
      'keep-workdir': { type: 'boolean' },
      'no-stage-cache': { type: 'boolean' },
      'single-layer': { type: 'boolean' },
      'source-date-epoch': { type: 'string' },
      'verify-repro': { type: 'boolean' },
      verbose: STD_OPTIONS.verbose,
      quiet: STD_OPTIONS.quiet,
      json: STD_OPTIONS.json,
    },
    run: async ({ values }) => {
      const profile = profileArg(values.profile, 'build');
      const epoch = values['source-date-epoch'] as string | undefined;
      if (epoch !== undefined && !/^\d{1,12}$/.test(epoch))
        throw dataError(
          `--source-date-epoch: "${epoch}" is not a number of seconds since 1970`,
          'hvnode build',
          'e.g. --source-date-epoch $(git log -1 --format=%ct)',
        );
      const out = requireString(values.out, '--out', 'build');
      checkOutDir(out, 'hvnode build');
      for (const o of ['cache', 'tmpdir'] as const)
        if (typeof values[o] === 'string') checkOutDir(values[o] as string, 'hvnode build', `--${o}`);
      if (process.getuid?.() !== 0) {
        throw new HvError('building an image needs root (mmdebstrap, chroot and mount namespaces)', {
          where: 'hvnode build',
          exitCode: ExitCode.precondition,
          hint: 'run it as root, e.g. sudo npx hvnode build ...',
        });
      }
      const quiet = values.quiet === true;
      const progress = new Progress(
        process.stderr,
        process.stderr.isTTY === true && values.verbose !== true && !quiet,
      );
      const say = quiet ? () => {} : progress.say;
      const options = {
        profile,
        out,
        cacheDir: values.cache as string | undefined,
        tmpDir: values.tmpdir as string | undefined,
        keepWorkdir: values['keep-workdir'] === true,
        verbose: values.verbose === true,
        noStageCache: values['no-stage-cache'] === true,
        singleLayer: values['single-layer'] === true,
        sourceDateEpoch: epoch,
        say,
        progress,
      };
      return withInterrupt(
        async (signal) => {
          if (values['verify-repro'])
            return await runVerifyRepro({ ...options, signal }, values.json === true);
          const report = await buildImage({ ...options, signal });
          if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
          else
            say(`built ${report.iso} (${(report.isoBytes / 2 ** 20).toFixed(1)} MiB) in ${report.seconds} s`);
          return ExitCode.ok;
        },
        {
          where: 'hvnode build',
          onSignal: (sig) => process.stderr.write(`hvnode build: ${sig}: stopping and cleaning up\n`),
        },
      );
    },
  },
  {
    name: 'minimize',
    summary: 'remove files from a rootfs by blacklist rules',
    args: ['[FILE...]', 'ROOTFS'],
    help: `Usage: hvnode minimize [--rules FILE]... ROOTFS [--dry-run] [--json] [--strict]
                       [--allow-host-root]

Applies blacklist rule files (drop/keep, droppkg/keeppkg, module-drop/-keep, firmware-drop/-keep)
to the tree at ROOTFS. A removal that a kept binary or module still needs is refused and reported.
The root of the running system (/, or any path to it) is refused.

  -r, --rules FILE   a rule file; repeat it, or list several before ROOTFS
                     (default: blacklist/rules/*.blacklist)
  -n, --dry-run      change nothing, report what would be removed
  --json             print the report as JSON on standard output
  --strict           rules that match nothing and refused removals are errors (then nothing is changed)
  --allow-host-root  let ROOTFS be the running system's root (it removes this host's files)`,
    examples: [
      'hvnode minimize --rules my.blacklist /var/tmp/rootfs --dry-run',
      'hvnode minimize /var/tmp/rootfs --json > minimize-report.json',
    ],
    exitStatus: [
      [0, 'done (refusals are reported, not fatal)'],
      [2, 'ROOTFS does not exist'],
      [65, 'rule syntax errors, --strict violations, or ROOTFS is the running system'],
    ],
    options: {
      rules: { type: 'string', multiple: true, short: 'r' },
      'dry-run': STD_OPTIONS['dry-run'],
      json: STD_OPTIONS.json,
      strict: { type: 'boolean' },
      'allow-host-root': { type: 'boolean' },
    },
    run: async ({ values, positionals }) => {
      const given = (values.rules as string[] | undefined) ?? [];
      // `--rules a.blacklist b.blacklist ROOTFS`: the words before ROOTFS are more rule files
      const rootfs = positionals.at(-1) as string;
      const extra = positionals.slice(0, -1);
      if (extra.length > 0 && given.length === 0)
        throw dataError(
          `unexpected argument "${extra[1] ?? extra[0]}": expected one ROOTFS`,
          'hvnode minimize',
          'rule files go after --rules; see "hvnode minimize --help"',
        );
      if (values['allow-host-root'] !== true) refuseHostRoot(rootfs, 'hvnode minimize');
      const ruleFiles = given.length > 0 ? [...given, ...extra] : defaultRuleFiles();
      const json = values.json === true;
      let report: MinimizeReport;
      try {
        report = await minimize(rootfs, ruleFiles, {
          dryRun: values['dry-run'] === true,
          strict: values.strict === true,
          sizeBefore: treeBytes(rootfs),
        });
      } catch (err) {
        if (json && err instanceof MinimizeError && err.report)
          process.stdout.write(`${JSON.stringify(err.report, null, 2)}\n`);
        throw err;
      }
      for (const w of report.warnings) process.stderr.write(`${formatDiagnostic(w)}\n`);
      process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
      return ExitCode.ok;
    },
  },
  {
    name: 'manifest',
    summary: 'write and diff image manifests: "hvnode manifest write|diff"',
    commands: [manifestWrite, manifestDiff],
  },
  isoToPxebootCommand,
  isoToDiskCommand,
  ...docCommands('hvnode', () => program),
];

const program: Program = {
  prog: 'hvnode',
  summary: 'builds hvnode images',
  version: runtimeVersion(),
  commands,
  examples: [
    'hvnode build --profile default --out dist',
    'hvnode iso-to-disk dist/hvnode-0.1.0.iso /dev/sdX',
    'hvnode build --help',
  ],
  environment: [
    ['SOURCE_DATE_EPOCH', 'fixes timestamps of builds, manifests and SBOMs (reproducible builds)'],
    ['XDG_CACHE_HOME', 'the package and stage cache is $XDG_CACHE_HOME/hvnode (default ~/.cache/hvnode)'],
    ['HVNODE_DEBUG', '1: stack traces with errors, as --debug'],
  ],
};

async function runVerifyRepro(options: BuildOptions, json: boolean): Promise<number> {
  const r = await verifyRepro(options, derivedOutputs);
  if (json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  for (const o of r.outputs) {
    options.say(
      o.identical
        ? `reproducible: ${o.name} sha256 ${o.sha256A}`
        : `NOT reproducible: ${o.name} differs (${o.sha256A.slice(0, 12)} vs ${o.sha256B.slice(0, 12)}); first difference: ${o.firstDifference}`,
    );
  }
  if (!r.identical)
    process.stderr.write(
      `hvnode build: error: the two builds differ (SOURCE_DATE_EPOCH=${r.sourceDateEpoch})\n  hint: the named file is made differently on each build; fix what writes it (a timestamp, a random id, file order)\n`,
    );
  return r.identical ? ExitCode.ok : ExitCode.failure;
}

function requireString(v: unknown, option: string, cmd: string): string {
  if (typeof v !== 'string' || v === '')
    throw dataError(`missing ${option}`, `hvnode ${cmd}`, `see "hvnode ${cmd} --help"`);
  return v;
}

await runCli('hvnode', (argv) => dispatch(program, argv));
