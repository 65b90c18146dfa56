// The apt backend: a Debian rootfs from the kickstart's %packages through mmdebstrap.
// Sources come from the kickstart's repo/url lines, else from the build host's apt sources.
// Downloaded .debs are kept in a cache directory between builds.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Report } from '../../common/index.ts';
import { parseControl } from '../../manifests/index.ts';
import type { BuildContext } from '../build/context.ts';
import { shellQuote } from '../exec.ts';
import type { Kickstart } from '../kickstart/index.ts';
import type { BuildProfile } from '../kickstart/profile.ts';
import { runIsolated } from './chroot.ts';
import { JOURNALD_DROPIN, JOURNALD_DROPIN_DIR, JOURNALD_DROPIN_SOURCE } from './seed.ts';

export interface AptSource {
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
}

/** Parses deb822 `.sources` text (control-format stanzas; `#` lines are comments). */
export function parseDeb822Sources(text: string): AptSource[] {
  const stanzas = parseControl(
    text
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .join('\n'),
  );
  const out: AptSource[] = [];
  for (const fields of stanzas) {
    if ((fields.get('enabled') ?? 'yes').toLowerCase() === 'no') continue;
    const words = (k: string) => (fields.get(k) ?? '').split(/\s+/).filter(Boolean);
    if (words('uris').length === 0) continue;
    out.push({
      types: words('types'),
      uris: words('uris'),
      suites: words('suites'),
      components: words('components'),
    });
  }
  return out;
}

/** Parses one-line `deb [opts] URI SUITE COMPONENT...` sources. */
export function parseOneLineSources(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw
      .replace(/#.*/, '')
      .replace(/\[[^\]]*\]/, ' ')
      .trim();
    const [type, uri, suite, ...components] = line.split(/\s+/);
    if (!type || !uri || !suite || (type !== 'deb' && type !== 'deb-src')) continue;
    out.push({ types: [type], uris: [uri], suites: [suite], components });
  }
  return out;
}

export function readHostSources(etc = '/etc/apt'): AptSource[] {
  const sources: AptSource[] = [];
  const main = join(etc, 'sources.list');
  if (existsSync(main)) sources.push(...parseOneLineSources(readFileSync(main, 'utf8')));
  const dir = join(etc, 'sources.list.d');
  if (existsSync(dir)) {
    for (const f of readdirSync(dir).sort()) {
      const text = readFileSync(join(dir, f), 'utf8');
      if (f.endsWith('.sources')) sources.push(...parseDeb822Sources(text));
      else if (f.endsWith('.list')) sources.push(...parseOneLineSources(text));
    }
  }
  return sources;
}

/**
 * The host's Debian sources, re-aimed at the profile's release: a host on bookworm building
 * bookworm uses its suites as they are; for another release the codename in each suite
 * (bookworm-updates, bookworm-security) is replaced. Only sources that serve the host's
 * release are taken, so third-party repositories on the host do not leak into the image.
 */
export function mirrorLinesFromHost(sources: AptSource[], hostCodename: string, release: string): string[] {
  const lines: string[] = [];
  for (const s of sources) {
    if (!s.types.includes('deb')) continue;
    const suites = s.suites.filter((x) => x === hostCodename || x.startsWith(`${hostCodename}-`));
    if (suites.length === 0) continue;
    for (const uri of s.uris) {
      for (const suite of suites) {
        lines.push(
          `deb ${uri} ${release}${suite.slice(hostCodename.length)} ${s.components.join(' ') || 'main'}`,
        );
      }
    }
  }
  return [...new Set(lines)];
}

export function hostCodename(osRelease = '/etc/os-release'): string {
  try {
    return /^VERSION_CODENAME=(.*)$/m.exec(readFileSync(osRelease, 'utf8'))?.[1]?.replace(/"/g, '') ?? '';
  } catch {
    return '';
  }
}

export interface AptPlan {
  mirrors: string[];
  include: string[];
  exclude: string[];
  excludeDocs: boolean;
}

/** What mmdebstrap is asked to do, from the kickstart and the profile; problems go to the report. */
export function planApt(
  ks: Kickstart,
  profile: BuildProfile,
  hostMirrors: () => string[],
): { plan: AptPlan; report: Report } {
  const report = new Report();
  const mirrors: string[] = [];
  for (const c of ks.commands) {
    if (c.name !== 'url' && c.name !== 'repo') continue;
    const url = c.name === 'url' ? c.options.url : c.options.baseurl;
    if (typeof url === 'string') {
      mirrors.push(`deb ${url} ${profile.release} ${profile.components.join(' ')}`);
    } else {
      report.error(
        `the apt backend needs --${c.name === 'url' ? 'url' : 'baseurl'} on "${c.name}" (a mirror list is a dnf concept)`,
        {
          file: c.file,
          line: c.line,
        },
      );
    }
  }
  const include: string[] = [];
  const exclude: string[] = [];
  const items = [
    ...(ks.packages?.include ?? []).map((p) => ({ p, list: include })),
    ...(ks.packages?.exclude ?? []).map((p) => ({ p, list: exclude })),
  ];
  for (const { p, list } of items) {
    if (p.kind !== 'package') {
      report.error(`package ${p.kind}s (${p.name}) are not supported by the apt backend`, {
        file: p.file,
        line: p.line,
        hint: 'list Debian packages by name',
      });
    } else if (p.glob) {
      report.error(`package globs ("${p.name}") are not supported by the apt backend`, {
        file: p.file,
        line: p.line,
        hint: 'list Debian packages by name',
      });
    } else if (!list.includes(p.name)) {
      list.push(p.name);
    }
  }
  if (!ks.packages) report.error('the kickstart has no %packages section', { file: ks.files[0] });
  return {
    plan: {
      mirrors: mirrors.length > 0 ? mirrors : hostMirrors(),
      include: include.filter((p) => !exclude.includes(p)),
      exclude,
      excludeDocs: ks.packages?.options.excludedocs === true,
    },
    report,
  };
}

/** Builds the rootfs with mmdebstrap, isolated (chroot.ts) so that no mount or process outlives it. */
export async function buildRootfs(ctx: BuildContext, plan: AptPlan, rootfs: string): Promise<void> {
  const cache = join(ctx.cacheDir, 'apt', `${ctx.profile.release}-${ctx.profile.arch}`);
  mkdirSync(cache, { recursive: true });
  const q = shellQuote;
  const dracutDir = join(ctx.repoDir, 'builder', 'dracut');
  const hooks = [
    // the package cache: .debs from earlier builds go in, new ones come back out
    `--setup-hook=mkdir -p "$1/var/cache/apt/archives" && find ${q(cache)} -maxdepth 1 -name '*.deb' -exec cp -l -t "$1/var/cache/apt/archives/" {} + 2>/dev/null || find ${q(cache)} -maxdepth 1 -name '*.deb' -exec cp -t "$1/var/cache/apt/archives/" {} +`,
    `--customize-hook=find "$1/var/cache/apt/archives" -maxdepth 1 -name '*.deb' -exec cp -n -t ${q(cache)} {} +`,
    // dracut finds its configuration and our module in the image (the stage runs it after the
    // packages are in); the image's journal settings come from the same folder
    `--essential-hook=mkdir -p "$1/etc/dracut.conf.d" "$1/usr/lib/dracut/modules.d" "$1/${JOURNALD_DROPIN_DIR}" && cp ${q(join(dracutDir, '90-hvnode.conf'))} "$1/etc/dracut.conf.d/" && cp -r ${q(join(dracutDir, '90hvnode-live'))} "$1/usr/lib/dracut/modules.d/" && cp ${q(join(dracutDir, JOURNALD_DROPIN_SOURCE))} "$1/${JOURNALD_DROPIN_DIR}/${JOURNALD_DROPIN}"`,
  ];
  if (plan.exclude.length > 0) {
    const prefs = plan.exclude.map((p) => `Package: ${p}\nPin: release *\nPin-Priority: -1\n`).join('\n');
    hooks.push(
      `--setup-hook=mkdir -p "$1/etc/apt/preferences.d" && printf '%s' ${q(prefs)} > "$1/etc/apt/preferences.d/hvnode-exclude"`,
    );
  }
  const dpkgopts = plan.excludeDocs
    ? [
        'path-exclude=/usr/share/doc/*',
        'path-include=/usr/share/doc/*/copyright',
        'path-exclude=/usr/share/man/*',
        'path-exclude=/usr/share/info/*',
      ].map((o) => `--dpkgopt=${o}`)
    : [];
  await runIsolated(
    [
      'mmdebstrap',
      '--mode=root',
      '--format=directory',
      '--variant=minbase',
      '--skip=essential/unlink',
      // merged /usr from the start (directory symlinks, as debootstrap makes them), so apt has
      // no reason to pull in usrmerge and the perl it needs
      '--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr',
      // dpkg without fsync (eatmydata inside the chroot, removed again before the tree is
      // final): the tree is thrown away if the build fails, so durability buys nothing here
      '--hook-dir=/usr/share/mmdebstrap/hooks/eatmydata',
      `--architectures=${ctx.profile.arch}`,
      '--aptopt=APT::Install-Recommends "false"',
      `--include=${plan.include.join(',')}`,
      ...dpkgopts,
      ...hooks,
      ctx.profile.release,
      rootfs,
      ...plan.mirrors,
    ],
    // the kernel's postinst makes no initramfs: the stage makes both after this (makeInitrds)
    { log: ctx.log, signal: ctx.signal, what: 'mmdebstrap', env: { ...ctx.env, INITRD: 'No' } },
  );
}

/** `deb [options] URI SUITE COMPONENTS...` → the suite's InRelease address. */
export function inReleaseUrl(line: string): string | undefined {
  const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line.trim());
  if (!m) return undefined;
  const [, uri, suite] = m as unknown as [string, string, string];
  return suite.endsWith('/')
    ? `${uri}/${suite}InRelease`
    : `${uri.replace(/\/$/, '')}/dists/${suite}/InRelease`;
}

/**
 * A digest of the repositories' current metadata (each suite's InRelease), so that a cached
 * rootfs is not reused once the archive has newer packages. Undefined if any cannot be read.
 */
export async function repoMetadataDigest(
  mirrors: string[],
  signal?: AbortSignal,
): Promise<string | undefined> {
  const h = createHash('sha256');
  for (const line of mirrors) {
    const url = inReleaseUrl(line);
    if (!url) return undefined;
    try {
      if (url.startsWith('file:')) h.update(readFileSync(new URL(url)));
      else {
        const res = await fetch(url, {
          signal: signal
            ? AbortSignal.any([signal, AbortSignal.timeout(20_000)])
            : AbortSignal.timeout(20_000),
        });
        if (!res.ok) return undefined;
        h.update(new Uint8Array(await res.arrayBuffer()));
      }
    } catch {
      return undefined;
    }
  }
  return h.digest('hex');
}
