// Kernel module trees: where they are, what modules.dep says each module needs, and running the
// image's own depmod after modules were removed.

import { run, ToolError } from '../common/index.ts';
import type { ImageFs } from './rootfs.ts';

export interface KernelTree {
  kver: string;
  /** Image path of lib/modules/<kver>, as the tree walk sees it (no symlinked component). */
  dir: string;
}

/**
 * Directories the walk reaches under their real name: on a merged-/usr image /lib is a symlink
 * to usr/lib, so its modules are found (and matched) as /usr/lib/modules only.
 */
export function realDirs(img: ImageFs, candidates: string[]): string[] {
  return candidates.filter((dir) => {
    let p = '';
    for (const c of dir.split('/').filter(Boolean)) {
      p += `/${c}`;
      const st = img.lstat(p);
      if (!st || !st.isDirectory()) return false;
    }
    return true;
  });
}

export function kernelTrees(img: ImageFs): KernelTree[] {
  const trees: KernelTree[] = [];
  for (const base of realDirs(img, ['/lib/modules', '/usr/lib/modules'])) {
    for (const kver of img.list(base).sort()) {
      if (img.lstat(`${base}/${kver}`)?.isDirectory()) trees.push({ kver, dir: `${base}/${kver}` });
    }
  }
  return trees;
}

export function firmwareDirs(img: ImageFs): string[] {
  return realDirs(img, ['/lib/firmware', '/usr/lib/firmware']);
}

/** modules.dep of one kernel: image path of a module → image paths of every module it needs. */
export function readModulesDep(img: ImageFs, tree: KernelTree): Map<string, string[]> {
  const deps = new Map<string, string[]>();
  const text = img.readText(`${tree.dir}/modules.dep`);
  if (text === undefined) return deps;
  const abs = (p: string) => (p.startsWith('/') ? p : `${tree.dir}/${p}`);
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const mod = line.slice(0, colon).trim();
    if (mod === '') continue;
    deps.set(
      abs(mod),
      line
        .slice(colon + 1)
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map(abs),
    );
  }
  return deps;
}

/**
 * Regenerates modules.dep and friends with the image's depmod (the build host may have none, or
 * a different kmod). Returns a warning when it could not run; never fails the minimization.
 */
export async function runDepmod(img: ImageFs, kver: string): Promise<string | undefined> {
  const depmod = ['/sbin/depmod', '/usr/sbin/depmod'].find((p) => {
    const r = img.resolve(p);
    return r !== undefined && (img.lstat(r.path)?.isFile() ?? false);
  });
  if (!depmod)
    return `depmod could not run for kernel ${kver}: the image has no /sbin/depmod; its modules.dep still lists removed modules`;
  try {
    await run('chroot', [img.root, depmod, kver]);
  } catch (err) {
    const why = (err instanceof ToolError ? err.detail : (err as Error).message).split('\n')[0];
    return `depmod could not run for kernel ${kver} (chroot ${img.root} ${depmod} ${kver}): ${why}`;
  }
  return undefined;
}
