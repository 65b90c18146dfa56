// The dnf backend: a Fedora/EL-style rootfs from the kickstart's repo/url lines and %packages,
// through `dnf --installroot` (the seed's lineage: livecd-creator installed with yum/dnf too).
// Nothing of the build host's dnf setup is used: its config, repos, vars and plugins are
// replaced by files in the work directory, and rpm's macros come from a private HOME (Debian's
// rpm keeps its database in ~/.rpmdb; the image needs the distribution's place).
// Downloaded packages are kept in a cache directory between builds.

import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, HvError, Report } from '../../common/index.ts';
import type { BuildContext } from '../build/context.ts';
import { requireTools } from '../exec.ts';
import type { Kickstart, KsCommand, KsPackageItem, SourcePos } from '../kickstart/index.ts';
import type { BuildProfile } from '../kickstart/profile.ts';
import { runIsolated, writeInImage } from './chroot.ts';
import { JOURNALD_DROPIN, JOURNALD_DROPIN_DIR, JOURNALD_DROPIN_SOURCE } from './seed.ts';

export type RootfsBackend = 'apt' | 'dnf';

/** Which backend builds the rootfs of a profile: apt for Debian, dnf for the rpm distributions. */
export function rootfsBackend(profile: Pick<BuildProfile, 'distro'>): RootfsBackend {
  return profile.distro === 'debian' ? 'apt' : 'dnf';
}

export interface DnfRepo extends SourcePos {
  /** dnf's repository id (the kickstart's --name). */
  id: string;
  baseurl?: string;
  mirrorlist?: string;
  gpgcheck: boolean;
  sslverify: boolean;
  /** Further repository settings (cost, includepkgs, excludepkgs, proxy, sslcacert, ...). */
  settings: Record<string, string>;
  /** `repo --install`: the repository's definition is also written into the image. */
  install: boolean;
}

/** One thing to install, as dnf spells it: a name, a glob, `@group` or `@^environment`. */
export interface DnfSpec extends SourcePos {
  spec: string;
}

export interface DnfPlan {
  releasever: string;
  repos: DnfRepo[];
  include: DnfSpec[];
  /** Names or globs that must not be installed (dnf --exclude). */
  exclude: DnfSpec[];
  excludeDocs: boolean;
  /** %packages --ignoremissing: missing packages are skipped instead of failing the build. */
  ignoreMissing: boolean;
  /** %packages --instLangs: rpm's %_install_langs. */
  installLangs?: string;
  /** Extra dnf settings from %packages options (multilib, retries, timeout). */
  settings: Record<string, string>;
}

/** Where each distribution keeps its rpm database (Fedora 36+ moved it below /usr). */
export const RPMDB_PATH: Record<Exclude<BuildProfile['distro'], 'debian'>, string> = {
  fedora: '/usr/lib/sysimage/rpm',
};

const REPO_SETTINGS: Record<string, string> = {
  cost: 'cost',
  includepkgs: 'includepkgs',
  excludepkgs: 'excludepkgs',
  proxy: 'proxy',
  sslcacert: 'sslcacert',
  sslclientcert: 'sslclientcert',
  sslclientkey: 'sslclientkey',
};

const REPO_ID = /^[A-Za-z0-9_.:-]+$/;
const URL_SCHEME = /^(https?|ftp|file):\/\/\S+$/;

function repoFrom(c: KsCommand, report: Report): DnfRepo | undefined {
  const o = c.options;
  const str = (k: string) => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
  const id = c.name === 'url' ? 'ks-url' : (str('name') ?? '');
  const baseurl = str(c.name === 'url' ? 'url' : 'baseurl');
  const mirrorlist = str('mirrorlist');
  const at = { file: c.file, line: c.line };
  if (!REPO_ID.test(id)) {
    report.error(`repo name "${id}" cannot be a dnf repository id`, {
      ...at,
      hint: 'use letters, digits and _ . : -',
    });
    return undefined;
  }
  const url = baseurl ?? mirrorlist ?? '';
  if (!URL_SCHEME.test(url)) {
    report.error(`"${url}" is not a URL dnf can read packages from`, {
      ...at,
      hint: 'use http://, https://, ftp:// or file:///absolute/path',
    });
    return undefined;
  }
  const local = url.startsWith('file://');
  const noverify = o.noverifyssl === true;
  if (noverify)
    report.warning(`repo "${id}": --noverifyssl turns off TLS and GPG checks of its packages`, at);
  const settings: Record<string, string> = {};
  for (const [k, setting] of Object.entries(REPO_SETTINGS)) {
    const v = str(k);
    if (v !== undefined) settings[setting] = v;
  }
  return {
    ...at,
    id,
    ...(baseurl !== undefined ? { baseurl } : { mirrorlist }),
    // a file:// repository is as trusted as the build host's files; a network one is checked
    gpgcheck: !local && !noverify,
    sslverify: !noverify,
    settings,
    install: o.install === true,
  };
}

function packagesFrom(ks: Kickstart, report: Report): Pick<DnfPlan, 'include' | 'exclude'> {
  const include: DnfSpec[] = [];
  const exclude: DnfSpec[] = [];
  for (const p of ks.packages?.exclude ?? []) {
    if (p.kind !== 'package') {
      report.error(`excluding package ${p.kind}s (-${p.name}) is not supported by the dnf backend`, {
        file: p.file,
        line: p.line,
        hint: 'exclude the packages by name (globs work)',
      });
    } else if (!exclude.some((e) => e.spec === p.name)) {
      exclude.push({ spec: p.name, file: p.file, line: p.line });
    }
  }
  for (const p of ks.packages?.include ?? []) {
    const spec = p.name;
    // an excluded name wins over an included one, as in anaconda
    if (include.some((i) => i.spec === spec) || exclude.some((e) => e.spec === spec)) continue;
    include.push({ spec, file: p.file, line: p.line });
  }
  return { include, exclude };
}

function packageSettings(options: Record<string, string | true>): Record<string, string> {
  const settings: Record<string, string> = {};
  if (options.multilib === true) settings.multilib_policy = 'all';
  if (typeof options.retries === 'string') settings.retries = options.retries;
  if (typeof options.timeout === 'string') settings.timeout = options.timeout;
  return settings;
}

function reposFrom(ks: Kickstart, report: Report): DnfRepo[] {
  const lines = ks.commands.filter((c) => c.name === 'repo' || c.name === 'url');
  if (lines.length === 0) {
    report.error('the dnf backend needs a package repository, and the kickstart has no repo or url line', {
      file: ks.files[0],
      hint: 'set "mirror" in the profile, or add "repo --name=NAME --baseurl=URL" to the kickstart',
    });
  }
  const repos = lines.map((c) => repoFrom(c, report)).filter((r): r is DnfRepo => r !== undefined);
  for (const r of repos.filter((x) => x.gpgcheck)) {
    report.warning(
      `repo "${r.id}": its packages are GPG-checked, but the kickstart cannot name a key, so dnf accepts only keys already in the image`,
      { file: r.file, line: r.line, hint: 'use a file:// repository of checked packages, or --noverifyssl' },
    );
  }
  return repos;
}

/** What dnf is asked to do, from the kickstart and the profile; problems go to the report. */
export function planDnf(ks: Kickstart, profile: BuildProfile): { plan: DnfPlan; report: Report } {
  const report = new Report();
  const repos = reposFrom(ks, report);
  const { include, exclude } = packagesFrom(ks, report);
  if (!ks.packages) report.error('the kickstart has no %packages section', { file: ks.files[0] });
  else if (include.length === 0)
    report.error('%packages installs nothing', { file: ks.packages.file, line: ks.packages.line });
  const options = ks.packages?.options ?? {};
  return {
    plan: {
      releasever: profile.release,
      repos,
      include,
      exclude,
      excludeDocs: options.excludedocs === true,
      ignoreMissing: options.ignoremissing === true,
      ...(typeof options.instLangs === 'string' ? { installLangs: options.instLangs } : {}),
      settings: packageSettings(options),
    },
    report,
  };
}

/** The repositories as a dnf .repo file (dnf reads no other repository definition). */
export function repoFile(repos: DnfRepo[]): string {
  return repos
    .map((r) => {
      const lines = [
        `[${r.id}]`,
        `name=${r.id}`,
        r.baseurl !== undefined ? `baseurl=${r.baseurl}` : `mirrorlist=${r.mirrorlist}`,
        'enabled=1',
        `gpgcheck=${r.gpgcheck ? 1 : 0}`,
        ...(r.sslverify ? [] : ['sslverify=0']),
        ...Object.entries(r.settings).map(([k, v]) => `${k}=${v}`),
      ];
      return `${lines.join('\n')}\n`;
    })
    .join('\n');
}

/** ~/.rpmmacros for the dnf run: where the database goes, and no host-only transaction plugins. */
export function rpmMacros(dbpath: string, plan: Pick<DnfPlan, 'installLangs'>): string {
  const lines = [
    `%_dbpath ${dbpath}`,
    '%_db_backend sqlite',
    // these talk to the build host (D-Bus, syslog, audit), not to the image
    ...['systemd_inhibit', 'dbus_announce', 'syslog', 'audit'].map((p) => `%__transaction_${p} %{nil}`),
    ...(plan.installLangs !== undefined ? [`%_install_langs ${plan.installLangs}`] : []),
  ];
  return `${lines.join('\n')}\n`;
}

export interface DnfPaths {
  root: string;
  /** An (almost) empty dnf.conf: the settings are on the command line, where the log shows them. */
  config: string;
  reposdir: string;
  varsdir: string;
  /** Metadata and (keepcache) downloaded packages, kept between builds. */
  cachedir: string;
}

/** dnf's command line for the plan (repositories come from the .repo file in paths.reposdir). */
export function dnfArgs(plan: DnfPlan, paths: DnfPaths): string[] {
  const settings: Record<string, string> = {
    reposdir: paths.reposdir,
    varsdir: paths.varsdir,
    // a cachedir given on the command line is a host path (dnf's own default is below the root)
    cachedir: paths.cachedir,
    keepcache: 'True',
    install_weak_deps: 'False',
    strict: plan.ignoreMissing ? 'False' : 'True',
    ...(plan.excludeDocs ? { tsflags: 'nodocs' } : {}),
    ...plan.settings,
  };
  return [
    'dnf',
    `--installroot=${paths.root}`,
    `--config=${paths.config}`,
    `--releasever=${plan.releasever}`,
    '--noplugins',
    // file:// repositories change between builds with the same name; a network one costs a repomd.xml
    '--refresh',
    '--assumeyes',
    ...Object.entries(settings).map(([k, v]) => `--setopt=${k}=${v}`),
    ...plan.exclude.map((e) => `--exclude=${e.spec}`),
    'install',
    ...plan.include.map((i) => i.spec),
  ];
}

// Inside the private mount namespace: the kernel file systems rpm scriptlets expect (a
// scriptlet's >/dev/null must not create a file). They go away with the namespace.
const MOUNT_AND_RUN = `set -e
r=$1; shift
mkdir -p "$r/dev" "$r/proc" "$r/sys" "$r/run"
mount --rbind /dev "$r/dev"; mount -t proc proc "$r/proc"; mount -t sysfs sysfs "$r/sys"
mount -t tmpfs tmpfs "$r/run"
exec "$@"`;

/** dnf's complaints about what it cannot find: `No match for argument: x`, a missing group. */
export function missingSpecs(output: string): string[] {
  const found = new Set<string>();
  for (const m of output.matchAll(/No match for argument: (\S+)/g)) found.add(m[1] as string);
  // the summary line names them all, should the per-name lines be cut from the output's tail
  for (const m of output.matchAll(/Unable to find a match: (.+)/g))
    for (const name of (m[1] as string).split(/\s+/)) if (name) found.add(name);
  for (const m of output.matchAll(
    /(?:Module or Group|Group|Environment) '([^']+)' (?:does not exist|is not available)/g,
  ))
    found.add(m[1] as string);
  return [...found];
}

/** A dnf failure about packages the kickstart names, pointed at the %packages lines. */
function missingPackagesError(err: HvError, plan: DnfPlan): HvError {
  const missing = missingSpecs(err.message);
  const items = plan.include.filter((i) =>
    missing.some((m) => i.spec === m || i.spec === `@${m}` || i.spec === `@^${m}`),
  );
  if (items.length === 0) return err;
  const repos = plan.repos.map((r) => r.id).join(', ');
  return new HvError(`dnf cannot find ${items.map((i) => `"${i.spec}"`).join(', ')} (${err.message})`, {
    exitCode: ExitCode.dataError,
    cause: err,
    diagnostics: items.map((i) => ({
      severity: 'error' as const,
      message: `${i.spec.startsWith('@') ? 'group' : 'package'} "${i.spec}" is not in the repositories (${repos})`,
      file: i.file,
      line: i.line,
    })),
    hint: `check the name, or add a repo line for the repository that has it${
      plan.include.some((i) => i.spec.startsWith('@'))
        ? ' (groups need comps metadata: createrepo_c -g comps.xml)'
        : ''
    }`,
  });
}

/**
 * dracut's configuration and our module, in place before a kernel package's scriptlets run dracut,
 * and the image's journal settings from the same folder.
 */
function seedDracut(ctx: BuildContext, root: string): void {
  const dracutDir = join(ctx.repoDir, 'builder', 'dracut');
  mkdirSync(join(root, 'etc/dracut.conf.d'), { recursive: true });
  mkdirSync(join(root, 'usr/lib/dracut/modules.d'), { recursive: true });
  mkdirSync(join(root, JOURNALD_DROPIN_DIR), { recursive: true });
  cpSync(join(dracutDir, '90-hvnode.conf'), join(root, 'etc/dracut.conf.d/90-hvnode.conf'));
  cpSync(join(dracutDir, JOURNALD_DROPIN_SOURCE), join(root, JOURNALD_DROPIN_DIR, JOURNALD_DROPIN));
  cpSync(join(dracutDir, '90hvnode-live'), join(root, 'usr/lib/dracut/modules.d/90hvnode-live'), {
    recursive: true,
  });
}

/** Builds the rootfs with dnf, isolated (chroot.ts) so that no mount or process outlives it. */
export async function buildRootfsDnf(ctx: BuildContext, plan: DnfPlan, root: string): Promise<void> {
  // dnf runs below sh in the namespace, where a missing one would only be "not found"
  await requireTools(['dnf', 'rpm', 'unshare']);
  const { distro, release, arch } = ctx.profile;
  const dbpath = distro === 'debian' ? RPMDB_PATH.fedora : RPMDB_PATH[distro];
  const dir = join(ctx.workdir, 'dnf');
  const paths: DnfPaths = {
    root,
    config: join(dir, 'dnf.conf'),
    reposdir: join(dir, 'repos.d'),
    varsdir: join(dir, 'vars'),
    cachedir: join(ctx.cacheDir, 'dnf', `${distro}-${release}-${arch}`),
  };
  for (const d of [paths.cachedir, root, paths.reposdir, paths.varsdir, join(dir, 'home')])
    mkdirSync(d, { recursive: true });
  writeFileSync(paths.config, '[main]\n');
  writeFileSync(join(paths.reposdir, 'hvnode.repo'), repoFile(plan.repos));
  writeFileSync(join(dir, 'home', '.rpmmacros'), rpmMacros(dbpath, plan));
  seedDracut(ctx, root);
  try {
    await runIsolated(['sh', '-c', MOUNT_AND_RUN, 'sh', root, ...dnfArgs(plan, paths)], {
      log: ctx.log,
      signal: ctx.signal,
      what: 'dnf',
      env: { ...ctx.env, HOME: join(dir, 'home'), LC_ALL: 'C.UTF-8' },
    });
  } catch (err) {
    throw err instanceof HvError ? missingPackagesError(err, plan) : err;
  }
  const installed = plan.repos.filter((r) => r.install);
  if (installed.length > 0) {
    // the image now holds the packages' files: its links are resolved inside it, never on the host
    for (const r of installed) writeInImage(root, `/etc/yum.repos.d/${r.id}.repo`, repoFile([r]));
  }
}
