// Debian's live-build as the peer of `hvnode build`: the same package set, bookworm, an
// iso-hybrid image without the installer or recommends, from the build host's mirrors. It is
// installed only when its section runs. Its own cache/ (packages, bootstrap) stays between the
// warm-up and the measured builds, as in a developer's rebuild.

import { appendFileSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { type AptSource, hostCodename, readHostSources } from '../../builder/rootfs/apt.ts';

export interface Mirrors {
  main: string;
  security?: string;
}

/** The host's Debian mirror and security mirror for `release` (from /etc/apt, deb822 or one-line). */
export function hostMirrors(release: string, sources: AptSource[] = readHostSources()): Mirrors {
  const codename = hostCodename() || release;
  const debs = sources.filter((s) => s.types.includes('deb'));
  const uriFor = (suite: string) => debs.find((s) => s.suites.includes(suite))?.uris[0];
  const main = uriFor(codename);
  if (!main) throw new Error(`no Debian mirror for ${codename} in the host's apt sources`);
  return { main, security: uriFor(`${codename}-security`) };
}

async function sh(cmd: string, args: string[], log: string, cwd?: string): Promise<void> {
  appendFileSync(log, `$ ${cwd ? `cd ${cwd} && ` : ''}${[cmd, ...args].join(' ')}\n`);
  // the output goes to the log as it comes (a build's progress can be followed there) and is
  // kept for the error message
  const toLog = { file: log, append: true } as const;
  const r = await execa(cmd, args, {
    cwd,
    reject: false,
    stdin: 'ignore',
    stdout: ['pipe', toLog],
    stderr: ['pipe', toLog],
    all: true,
    env: { DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.exitCode !== 0) {
    const tail = String(r.all ?? '')
      .trimEnd()
      .split('\n')
      .slice(-8)
      .join('\n  ');
    throw new Error(`${cmd} ${args[0] ?? ''} failed (exit ${r.exitCode}); see ${log}:\n  ${tail}`);
  }
}

/** apt-get install live-build when `lb` is missing (with an apt-get update if the first try fails). */
export async function ensureLiveBuild(log: string, say: (m: string) => void): Promise<void> {
  const found = await execa('sh', ['-c', 'command -v lb'], { reject: false });
  if (found.exitCode === 0) return;
  say('live-build is not installed: apt-get install -y live-build (for this section only)');
  try {
    await sh('apt-get', ['install', '-y', 'live-build'], log);
  } catch {
    await sh('apt-get', ['update'], log);
    await sh('apt-get', ['install', '-y', 'live-build'], log);
  }
}

export function lbConfigArgs(release: string, mirrors: Mirrors): string[] {
  const security = mirrors.security
    ? ['--mirror-chroot-security', mirrors.security, '--mirror-binary-security', mirrors.security]
    : [];
  return [
    'config',
    '--distribution',
    release,
    '--archive-areas',
    'main',
    '--binary-images',
    'iso-hybrid',
    '--debian-installer',
    'none',
    '--apt-recommends',
    'false',
    '--mirror-bootstrap',
    mirrors.main,
    '--mirror-chroot',
    mirrors.main,
    '--mirror-binary',
    mirrors.main,
    ...security,
  ];
}

/** A live-build config directory for the package set; `build` makes the ISO and returns its size. */
export class LiveBuild {
  private configured = false;

  /** `log` lives outside `dir`, so that it survives the removal of a failed build's tree. */
  constructor(
    readonly dir: string,
    readonly log: string,
    private readonly release: string,
    private readonly packages: string[],
  ) {}

  /** `lb config` (again after `lb clean`: it updates the tree in place and keeps package-lists/). */
  private async configure(): Promise<void> {
    await sh('lb', lbConfigArgs(this.release, hostMirrors(this.release)), this.log, this.dir);
    const lists = join(this.dir, 'config', 'package-lists');
    mkdirSync(lists, { recursive: true });
    writeFileSync(join(lists, 'hvnode.list.chroot'), `${this.packages.join('\n')}\n`);
  }

  /**
   * Untimed preparation before each build: `lb config`, preceded by `lb clean` after a build.
   * `lb clean` (no option: --all) keeps cache/ but removes every stage file in .build/, the
   * config stage's too, and chroot_prep requires that one: a `lb build` straight after
   * `lb clean` restores the bootstrap from cache/ and then stops with "E: the following stage is
   * required to be done first: config". Hence `lb config` again after every clean.
   */
  async prepare(): Promise<void> {
    if (this.configured) await sh('lb', ['clean'], this.log, this.dir);
    else {
      mkdirSync(this.dir, { recursive: true });
      writeFileSync(this.log, '');
    }
    await this.configure();
    this.configured = true;
    if (!existsSync(join(this.dir, '.build', 'config')))
      throw new Error(`lb config left no .build/config stage file in ${this.dir}; see ${this.log}`);
  }

  /** `lb build`; the ISO's size in bytes. */
  async build(): Promise<number> {
    await sh('lb', ['build'], this.log, this.dir);
    const iso = ['live-image-amd64.hybrid.iso', 'live-image-amd64.iso']
      .map((f) => join(this.dir, f))
      .find((f) => existsSync(f));
    if (!iso) throw new Error(`lb build made no ISO in ${this.dir}; see ${this.log}`);
    return statSync(iso).size;
  }
}
