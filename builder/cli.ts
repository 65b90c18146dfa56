// hvnode: the build host CLI.

import { mkdirSync } from 'node:fs';
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
  dataError,
  dispatch,
  ExitCode,
  formatDiagnostic,
  HvError,
  runCli,
  runtimeVersion,
} from '../common/index.ts';
import {
  diffManifests,
  formatDiff,
  type Manifests,
  readManifests,
  writeManifests,
} from '../manifests/index.ts';
import {
  type BuildOptions,
  buildImage,
  KICKSTARTS_DIR,
  PROFILES_DIR,
  writeFileAtomic,
} from './build/build.ts';
import { Progress } from './build/progress.ts';
import { type DerivedOutput, verifyRepro } from './build/repro.ts';
import { isoToDisk, isoToDiskCommand } from './disk/isotodisk.ts';
import { parseKickstartFile } from './kickstart/index.ts';
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

const ksCheck: Command = {
  name: 'check',
  summary: 'validate a kickstart file (and everything it %includes)',
  help: `Usage: hvnode ks check FILE [--verbose]

Exits 0 when the kickstart is valid, 65 with FILE:LINE: message lines on stderr when not.
  --verbose  also list the commands the builder keeps but does not act on`,
  options: { verbose: { type: 'boolean', short: 'v' } },
  run: async ({ values, positionals }) => {
    const [file, ...extra] = positionals;
    if (!file || extra.length > 0)
      throw dataError(
        'expected exactly one kickstart FILE',
        'hvnode ks check',
        'see "hvnode ks check --help"',
      );
    const { kickstart, report } = parseKickstartFile(file);
    for (const d of report.sorted()) process.stderr.write(`${formatDiagnostic(d)}\n`);
    if (values.verbose) {
      const kept = kickstart.commands.filter((c) => !c.actedOn);
      for (const c of kept) process.stdout.write(`${c.file}:${c.line}: kept, not acted on: ${c.name}\n`);
      process.stdout.write(
        `${kickstart.files.length} file(s), ${kickstart.commands.length} command(s) (${kept.length} kept but not acted on), ${kickstart.packages ? kickstart.packages.include.length : 0} package item(s), ${kickstart.scripts.length} script(s)\n`,
      );
    }
    return report.hasErrors ? ExitCode.dataError : ExitCode.ok;
  },
};

const commands: Command[] = [
  {
    name: 'render',
    summary: 'render a build profile into one flat kickstart',
    help: `Usage: hvnode render --profile P [-o FILE]

  --profile P   profile name in kickstarts/profiles/ (default, test) or a path to a YAML file
  -o FILE       write to FILE (atomically) instead of standard output`,
    options: { profile: { type: 'string', short: 'p' }, output: { type: 'string', short: 'o' } },
    run: async ({ values }) => {
      const { profile, file } = loadProfile(
        requireString(values.profile, '--profile', 'render'),
        PROFILES_DIR,
      );
      const text = renderKickstart({ profile, profileFile: file, kickstartsDir: KICKSTARTS_DIR });
      if (typeof values.output === 'string') writeFileAtomic(values.output, text);
      else process.stdout.write(text);
      return ExitCode.ok;
    },
  },
  {
    name: 'ks',
    summary: 'kickstart tools: "hvnode ks check FILE"',
    help: ksCheck.help,
    options: ksCheck.options,
    run: async ({ values, positionals }) => {
      const [sub, ...rest] = positionals;
      if (sub !== 'check')
        throw dataError(`unknown ks command "${sub ?? ''}"`, 'hvnode ks', 'use "hvnode ks check FILE"');
      return ksCheck.run?.({ values, positionals: rest });
    },
  },
  {
    name: 'build',
    summary: 'build a live ISO from a build profile',
    help: `Usage: hvnode build --profile P --out DIR [--cache DIR] [--tmpdir DIR] [--keep-workdir]
                    [--no-stage-cache] [--source-date-epoch N] [--verify-repro] [--verbose] [--json]

Writes DIR/<name>-<version>.iso (under a temporary name until complete), the flat kickstart
DIR/<name>-<version>.ks, DIR/build-report.json and the tools' output in DIR/<name>-<version>.build.log.
Runs as root (mmdebstrap, chroot, mount namespaces).

  --profile P       profile name in kickstarts/profiles/ (default, test) or a path to a YAML file
  --out DIR         output directory (created if missing)
  --cache DIR       downloaded packages are kept here between builds (default ~/.cache/hvnode)
  --tmpdir DIR      where the work tree goes (default /var/tmp; needs a few GiB)
  --keep-workdir    keep the work tree (rootfs and ISO tree) for inspection
  --no-stage-cache  run every stage (by default the rootfs stage is reused from DIR/stages in the
                    cache when its inputs are unchanged: packages, repository metadata, dracut module)
  --source-date-epoch N
                    fix every timestamp, UUID and volume id (default: $SOURCE_DATE_EPOCH, then the
                    profile's sourceDateEpoch)
  --verify-repro    build twice in separate temporary directories with the same epoch and no stage
                    cache, compare sha256 of the ISO; exit 1 naming the first differing file inside
                    when they differ, else keep the first build's output in DIR
  --verbose         show the tools' output as it comes
  --json            print the build report as JSON on standard output`,
    options: {
      profile: { type: 'string', short: 'p' },
      out: { type: 'string', short: 'o' },
      cache: { type: 'string' },
      tmpdir: { type: 'string' },
      'keep-workdir': { type: 'boolean' },
      'no-stage-cache': { type: 'boolean' },
      'source-date-epoch': { type: 'string' },
      'verify-repro': { type: 'boolean' },
      verbose: { type: 'boolean', short: 'v' },
      json: { type: 'boolean' },
    },
    run: async ({ values }) => {
      const profile = requireString(values.profile, '--profile', 'build');
      const epoch = values['source-date-epoch'] as string | undefined;
      if (epoch !== undefined && !/^\d{1,12}$/.test(epoch))
        throw dataError(
          `--source-date-epoch: "${epoch}" is not a number of seconds since 1970`,
          'hvnode build',
          'e.g. --source-date-epoch $(git log -1 --format=%ct)',
        );
      const out = requireString(values.out, '--out', 'build');
      if (process.getuid?.() !== 0) {
        throw new HvError('building an image needs root (mmdebstrap, chroot and mount namespaces)', {
          where: 'hvnode build',
          exitCode: ExitCode.precondition,
          hint: 'run it as root, e.g. sudo npx hvnode build ...',
        });
      }
      const controller = new AbortController();
      const onSignal = (sig: NodeJS.Signals) => {
        process.stderr.write(`hvnode build: ${sig}: stopping and cleaning up\n`);
        controller.abort(new HvError(`interrupted by ${sig}`, { where: 'hvnode build' }));
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const progress = new Progress(process.stderr, process.stderr.isTTY === true && values.verbose !== true);
      const say = progress.say;
      const options = {
        profile,
        out,
        cacheDir: values.cache as string | undefined,
        tmpDir: values.tmpdir as string | undefined,
        keepWorkdir: values['keep-workdir'] === true,
        verbose: values.verbose === true,
        noStageCache: values['no-stage-cache'] === true,
        sourceDateEpoch: epoch,
        signal: controller.signal,
        say,
        progress,
      };
      try {
        if (values['verify-repro']) return await runVerifyRepro(options, values.json === true);
        const report = await buildImage(options);
        if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        else
          say(`built ${report.iso} (${(report.isoBytes / 2 ** 20).toFixed(1)} MiB) in ${report.seconds} s`);
        return ExitCode.ok;
      } catch (err) {
        if (controller.signal.aborted) throw controller.signal.reason;
        throw err;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    },
  },
  {
    name: 'minimize',
    summary: 'remove files from a rootfs by blacklist rules',
    help: `Usage: hvnode minimize [--rules FILE]... ROOTFS [--dry-run] [--json] [--strict]

Applies blacklist rule files (drop/keep, droppkg/keeppkg, module-drop/-keep, firmware-drop/-keep)
to the tree at ROOTFS. A removal that a kept binary or module still needs is refused and reported.
Exits 0; 65 on rule syntax errors (or --strict violations); 2 when ROOTFS does not exist.

  --rules FILE  a rule file; repeat it, or list several before ROOTFS (default: blacklist/rules/*.blacklist)
  --dry-run     change nothing, report what would be removed
  --json        print the report as JSON on standard output
  --strict      rules that match nothing and refused removals are errors (then nothing is changed)`,
    options: {
      rules: { type: 'string', multiple: true, short: 'r' },
      'dry-run': { type: 'boolean', short: 'n' },
      json: { type: 'boolean' },
      strict: { type: 'boolean' },
    },
    run: async ({ values, positionals }) => {
      const given = (values.rules as string[] | undefined) ?? [];
      // `--rules a.blacklist b.blacklist ROOTFS`: the words before ROOTFS are more rule files
      const rootfs = positionals.at(-1);
      const extra = positionals.slice(0, -1);
      if (!rootfs || (extra.length > 0 && given.length === 0))
        throw dataError('expected one ROOTFS directory', 'hvnode minimize', 'see "hvnode minimize --help"');
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
    summary: 'write and diff image manifests',
    help: `Usage: hvnode manifest write ROOTFS --out DIR [--name NAME] [--created TIME]
       hvnode manifest diff A B [--json]

write: reads the rpm or Debian package database and the tree of ROOTFS and writes to DIR
  manifest-rpm.txt, manifest-srpm.txt, manifest-license.txt, manifest-owns.txt.bz2,
  manifest-file.txt.bz2, manifest-dir.txt.bz2, manifest.json and NAME.spdx.json (SPDX 2.3).
  --out DIR       output directory (created if missing)
  --name NAME     image name for the SBOM (default hvnode)
  --created TIME  SBOM creation time, ISO 8601 (default 1970-01-01T00:00:00Z);
                  SOURCE_DATE_EPOCH, when set, wins

diff: compares two images; A and B are folders holding manifests or live ISOs (isolinux/manifest-*).
  --json          print the difference as JSON`,
    options: {
      out: { type: 'string', short: 'o' },
      name: { type: 'string' },
      created: { type: 'string' },
      json: { type: 'boolean' },
    },
    run: async ({ values, positionals }) => {
      const [sub, ...rest] = positionals;
      if (sub === 'write') {
        if (rest.length !== 1)
          throw dataError(
            'expected exactly one ROOTFS',
            'hvnode manifest write',
            'see "hvnode manifest --help"',
          );
        const { files } = await writeManifests(
          rest[0] as string,
          requireString(values.out, '--out', 'manifest'),
          {
            name: typeof values.name === 'string' ? values.name : 'hvnode',
            created: values.created as string | undefined,
          },
        );
        for (const f of files) process.stdout.write(`${f}\n`);
        return ExitCode.ok;
      }
      if (sub === 'diff') {
        if (rest.length !== 2)
          throw dataError('expected two images A B', 'hvnode manifest diff', 'see "hvnode manifest --help"');
        const [a, b] = await Promise.all(rest.map((p) => readManifests(p)));
        const d = diffManifests(a as Manifests, b as Manifests);
        process.stdout.write(values.json ? `${JSON.stringify(d, null, 2)}\n` : formatDiff(d));
        return ExitCode.ok;
      }
      throw dataError(
        `unknown manifest command "${sub ?? ''}"`,
        'hvnode manifest',
        'use "hvnode manifest write ROOTFS --out DIR" or "hvnode manifest diff A B"',
      );
    },
  },
  isoToPxebootCommand,
  isoToDiskCommand,
];

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

await runCli('hvnode', (argv) =>
  dispatch({ prog: 'hvnode', summary: 'builds hvnode images', version: runtimeVersion(), commands }, argv),
);
