// %post scripts: in the image root (chroot), or on the build host with --nochroot and the
// environment livecd-creator gave them (INSTALL_ROOT, LIVE_ROOT).

import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HvError } from '../../common/index.ts';
import type { KsScript } from '../kickstart/index.ts';
import { inChroot, onHost, writeInImage } from '../rootfs/chroot.ts';
import type { BuildContext } from './context.ts';

export async function runPostScripts(ctx: BuildContext, root: string, liveRoot: string): Promise<void> {
  const scripts = ctx.kickstart.scripts.filter((s) => s.kind === 'post');
  for (const [i, s] of scripts.entries()) {
    const at = `${s.file}:${s.line}`;
    ctx.say(`%post ${s.nochroot ? '--nochroot ' : ''}(${at})`);
    let output: string;
    try {
      output = s.nochroot ? await runOnHost(ctx, s, i, root, liveRoot) : await runInRoot(ctx, s, i, root);
    } catch (err) {
      if (s.erroronfail || !(err instanceof HvError)) throw err;
      ctx.say(
        `warning: %post at ${at} failed and has no --erroronfail; going on: ${err.message.split('\n')[0]}`,
      );
      continue;
    }
    if (s.log === undefined) continue;
    if (s.nochroot) {
      // a --nochroot script runs on the build host: its log is a host path, like the script's own writes
      mkdirSync(dirname(s.log), { recursive: true });
      writeFileSync(s.log, output);
    } else writeInImage(root, s.log, output, { where: at });
  }
}

async function runInRoot(ctx: BuildContext, s: KsScript, i: number, root: string): Promise<string> {
  const inside = `/tmp/hvnode-ks-script-${i}`;
  const file = writeInImage(root, inside, s.body, { mode: 0o700 });
  try {
    return await inChroot(ctx, root, [s.interpreter, inside], {
      what: '%post script',
      where: `${s.file}:${s.line}`,
    });
  } finally {
    rmSync(file, { force: true });
  }
}

async function runOnHost(
  ctx: BuildContext,
  s: KsScript,
  i: number,
  root: string,
  liveRoot: string,
): Promise<string> {
  const file = join(ctx.workdir, `ks-script-nochroot-${i}`);
  writeFileSync(file, s.body, { mode: 0o700 });
  return onHost(ctx, [s.interpreter, file], {
    what: '%post --nochroot script',
    where: `${s.file}:${s.line}`,
    env: { INSTALL_ROOT: root, LIVE_ROOT: liveRoot },
  });
}
