// hvnode: the build host CLI.

import {
  type Command,
  dataError,
  dispatch,
  ExitCode,
  formatDiagnostic,
  HvError,
  runCli,
  runtimeVersion,
} from '../node-runtime/index.ts';
import { buildImage, KICKSTARTS_DIR, PROFILES_DIR, writeFileAtomic } from './build.ts';
import { parseKickstartFile } from './kickstart/index.ts';
import { loadProfile } from './profile.ts';
import { renderKickstart } from './render.ts';

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
    help: `Usage: hvnode build --profile P --out DIR [--cache DIR] [--tmpdir DIR] [--keep-workdir] [--verbose] [--json]

Writes DIR/<name>-<version>.iso (under a temporary name until complete), the flat kickstart
DIR/<name>-<version>.ks, DIR/build-report.json and the tools' output in DIR/<name>-<version>.build.log.
Runs as root (mmdebstrap, chroot, mount namespaces).

  --profile P       profile name in kickstarts/profiles/ (default, test) or a path to a YAML file
  --out DIR         output directory (created if missing)
  --cache DIR       downloaded packages are kept here between builds (default ~/.cache/hvnode)
  --tmpdir DIR      where the work tree goes (default /var/tmp; needs a few GiB)
  --keep-workdir    keep the work tree (rootfs and ISO tree) for inspection
  --verbose         show the tools' output as it comes
  --json            print the build report as JSON on standard output`,
    options: {
      profile: { type: 'string', short: 'p' },
      out: { type: 'string', short: 'o' },
      cache: { type: 'string' },
      tmpdir: { type: 'string' },
      'keep-workdir': { type: 'boolean' },
      verbose: { type: 'boolean', short: 'v' },
      json: { type: 'boolean' },
    },
    run: async ({ values }) => {
      const profile = requireString(values.profile, '--profile', 'build');
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
      const t0 = Date.now();
      const say = (msg: string) =>
        process.stderr.write(`${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s ${msg}\n`);
      try {
        const report = await buildImage({
          profile,
          out,
          cacheDir: values.cache as string | undefined,
          tmpDir: values.tmpdir as string | undefined,
          keepWorkdir: values['keep-workdir'] === true,
          verbose: values.verbose === true,
          signal: controller.signal,
          say,
        });
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
  { name: 'minimize', summary: 'remove files from a rootfs by blacklist rules' },
  { name: 'manifest', summary: 'write and diff image manifests' },
  { name: 'iso-to-pxeboot', summary: 'make a PXE boot tree from a live ISO' },
  { name: 'iso-to-disk', summary: 'write a live ISO to a USB stick or disk image' },
];

function requireString(v: unknown, option: string, cmd: string): string {
  if (typeof v !== 'string' || v === '')
    throw dataError(`missing ${option}`, `hvnode ${cmd}`, `see "hvnode ${cmd} --help"`);
  return v;
}

await runCli('hvnode', (argv) =>
  dispatch({ prog: 'hvnode', summary: 'builds hvnode images', version: runtimeVersion(), commands }, argv),
);
