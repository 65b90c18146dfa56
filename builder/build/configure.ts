// The configure stage: installs the node runtime and applies the kickstart commands the builder
// acts on (timezone, lang, keyboard, rootpw, user, services), before the %post scripts run.

import { chmodSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { dataError, GRUB_PAYLOAD_DIR, runtimeVersion } from '../../common/index.ts';
import { formatRelease } from '../../node-runtime/index.ts';
import { makeInstalledGrubPayload } from '../iso/grub.ts';
import type { KsCommand } from '../kickstart/index.ts';
import { imagePath, inChroot, mkdirInImage, writeInImage } from '../rootfs/chroot.ts';
import { bundleRuntime } from './bundle.ts';
import type { BuildContext } from './context.ts';

function put(root: string, path: string, content: string, mode = 0o644): void {
  writeInImage(root, path, content, { mode });
}

/** Replaces image entry `path` (never what a link there points to) by a symlink to `target`. */
function link(root: string, path: string, target: string): void {
  const host = imagePath(root, path, { follow: false });
  mkdirSync(dirname(host), { recursive: true });
  rmSync(host, { force: true });
  symlinkSync(target, host);
}

/** The node runtime's systemd units (node-runtime/units), enabled by the kickstart's `services`. */
export const RUNTIME_UNITS = [
  'hvnode-ready.service',
  'hvnode-up.target',
  'hvnode-persist.service',
  'hvnode-autoinstall.service',
  'hvnode-volumes.service',
  'hvnode-stateless.service',
  // drop-ins of systemd's own gettys: the installer before the login prompt on the live image
  'getty@tty1.service.d/hvnode-installer.conf',
  'serial-getty@.service.d/hvnode-installer.conf',
];

/** Where the image has tui/console-gate.sh (the getty drop-ins name it). */
export const CONSOLE_GATE = '/usr/lib/hvnode/console-gate';

export async function installRuntime(ctx: BuildContext, root: string): Promise<void> {
  const libDir = mkdirInImage(root, '/usr/lib/hvnode');
  for (const file of await bundleRuntime(ctx.repoDir, libDir)) {
    chmodSync(file, 0o755);
    link(root, `/usr/bin/${basename(file, '.mjs')}`, `../lib/hvnode/${basename(file)}`);
  }
  // the consoles' gate before agetty (the getty drop-ins run it): a shell script, so that an idle
  // console starts no Node.js
  put(root, CONSOLE_GATE, readFileSync(join(ctx.repoDir, 'tui', 'console-gate.sh'), 'utf8'), 0o755);
  for (const unit of RUNTIME_UNITS)
    put(
      root,
      `/usr/lib/systemd/system/${unit}`,
      readFileSync(join(ctx.repoDir, 'node-runtime', 'units', unit), 'utf8'),
    );
  await makeInstalledGrubPayload(mkdirInImage(root, GRUB_PAYLOAD_DIR), { log: ctx.log, signal: ctx.signal });
  put(
    root,
    '/etc/hvnode-release',
    formatRelease({ name: ctx.profile.name, version: ctx.profile.version, runtimeVersion: runtimeVersion() }),
  );
}

const where = (c: KsCommand) => `${c.file}:${c.line}`;

export async function applyCommands(ctx: BuildContext, root: string): Promise<void> {
  for (const c of ctx.kickstart.commands) {
    const arg = c.positional[0];
    switch (c.name) {
      case 'timezone': {
        if (!arg)
          throw dataError('timezone needs a zone name', where(c), 'e.g. timezone --utc Europe/Berlin');
        if (!/^[A-Za-z0-9_+/-]+$/.test(arg) || arg.includes('..'))
          throw dataError(`invalid time zone "${arg}"`, where(c));
        link(root, '/etc/localtime', `/usr/share/zoneinfo/${arg}`);
        put(root, '/etc/timezone', `${arg}\n`);
        break;
      }
      case 'lang':
        if (!arg) throw dataError('lang needs a locale', where(c), 'e.g. lang en_US.UTF-8');
        put(root, '/etc/default/locale', `LANG=${arg}\n`);
        break;
      case 'keyboard': {
        const layout = typeof c.options.vckeymap === 'string' ? c.options.vckeymap : arg;
        if (layout) put(root, '/etc/default/keyboard', `XKBMODEL=pc105\nXKBLAYOUT=${layout}\n`);
        break;
      }
      case 'rootpw':
        await setPassword(ctx, root, 'root', c, arg);
        break;
      case 'user': {
        const name = c.options.name;
        if (typeof name !== 'string') throw dataError('user needs --name', where(c));
        const args = ['useradd', '--create-home'];
        if (typeof c.options.groups === 'string') args.push('--groups', c.options.groups);
        if (typeof c.options.shell === 'string') args.push('--shell', c.options.shell);
        await inChroot(ctx, root, [...args, name], { what: 'useradd', where: where(c) });
        if (typeof c.options.password === 'string') await setPassword(ctx, root, name, c, c.options.password);
        break;
      }
      case 'services': {
        for (const [opt, verb] of [
          ['enabled', 'enable'],
          ['disabled', 'disable'],
        ] as const) {
          const list = c.options[opt];
          if (typeof list !== 'string') continue;
          const units = list
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean);
          if (units.length > 0)
            await inChroot(ctx, root, ['systemctl', verb, ...units], {
              what: `systemctl ${verb}`,
              where: where(c),
            });
        }
        break;
      }
      default:
        // repo/url/bootloader are used by other stages; the rest is kept but not acted on
        break;
    }
  }
}

async function setPassword(
  ctx: BuildContext,
  root: string,
  user: string,
  c: KsCommand,
  secret: string | undefined,
): Promise<void> {
  if (c.options.lock === true) {
    await inChroot(ctx, root, ['usermod', '--lock', user], { what: 'usermod --lock', where: where(c) });
    if (secret === undefined) return;
  }
  if (secret === undefined) throw dataError(`${c.name} needs a password or --lock`, where(c));
  const crypted = c.options.iscrypted === true;
  // chpasswd reads the secret on stdin: it never appears in a process list or the build log
  await inChroot(ctx, root, ['chpasswd', ...(crypted ? ['--encrypted'] : [])], {
    what: 'chpasswd',
    where: where(c),
    input: `${user}:${secret}\n`,
  });
}
