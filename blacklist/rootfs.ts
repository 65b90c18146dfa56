// Looking at an image tree from the inside: symlinks are resolved against the image root (an
// absolute link `/lib -> usr/lib` or `libc.so.6 -> /lib/...` must never lead onto the host), and
// the dynamic loader's search directories come from the image's own ld.so.conf.

import fs from 'node:fs';
import path from 'node:path';
import { walkImage } from '../common/index.ts';
import { compileGlob } from './glob.ts';

/** Image-absolute path (`/usr/lib/x`) → host path under the root. */
export class ImageFs {
  private readonly stats = new Map<string, fs.Stats | null>();
  private readonly links = new Map<string, string>();

  constructor(readonly root: string) {}

  host(p: string): string {
    return this.root + p;
  }

  lstat(p: string): fs.Stats | null {
    let st = this.stats.get(p);
    if (st === undefined) {
      try {
        st = fs.lstatSync(this.host(p));
      } catch {
        st = null;
      }
      this.stats.set(p, st);
    }
    return st;
  }

  readlink(p: string): string {
    let t = this.links.get(p);
    if (t === undefined) {
      t = fs.readlinkSync(this.host(p));
      this.links.set(p, t);
    }
    return t;
  }

  /**
   * Follows `p` inside the image. Returns the final image path and every entry the lookup went
   * through that could be removed (the symlinks followed and the final entry), or undefined when
   * nothing is there. `gone` makes entries count as absent: the lookup after a planned removal.
   */
  resolve(p: string, gone?: (p: string) => boolean): { path: string; chain: string[] } | undefined {
    const r = walkImage(this, p, { gone });
    return r && { path: r.path, chain: r.chain };
  }

  /** Directory listing of an image directory (after symlinks); empty when absent. */
  list(dir: string): string[] {
    const r = this.resolve(dir);
    if (!r) return [];
    try {
      return fs.readdirSync(this.host(r.path));
    } catch {
      return [];
    }
  }

  readText(p: string): string | undefined {
    const r = this.resolve(p);
    if (!r) return undefined;
    try {
      return fs.readFileSync(this.host(r.path), 'utf8');
    } catch {
      return undefined;
    }
  }
}

export const DEFAULT_LIB_DIRS = [
  '/lib/x86_64-linux-gnu',
  '/usr/lib/x86_64-linux-gnu',
  '/lib',
  '/usr/lib',
  '/lib64',
  '/usr/lib64',
];

/** The directories listed by the image's /etc/ld.so.conf and its `include`s, in order. */
export function ldSoConfDirs(img: ImageFs): string[] {
  const dirs: string[] = [];
  const seen = new Set<string>();
  const readConf = (file: string, depth: number) => {
    if (depth > 8 || seen.has(file)) return;
    seen.add(file);
    const text = img.readText(file);
    if (text === undefined) return;
    for (const raw of text.split('\n')) {
      const line = raw.replace(/#.*$/, '').trim();
      if (line === '') continue;
      const inc = /^include\s+(.+)$/.exec(line);
      if (inc) {
        for (const pattern of (inc[1] as string).split(/\s+/)) {
          const abs = pattern.startsWith('/') ? pattern : `${path.posix.dirname(file)}/${pattern}`;
          const dir = path.posix.dirname(abs);
          const g = compileGlob(path.posix.basename(abs));
          for (const name of img.list(dir).sort()) if (g.re.test(name)) readConf(`${dir}/${name}`, depth + 1);
        }
      } else if (line.startsWith('/')) {
        for (const d of line.split(/[\s:,]+/)) if (d.startsWith('/')) dirs.push(d.replace(/=.*$/, ''));
      }
    }
  };
  readConf('/etc/ld.so.conf', 0);
  return dirs;
}
