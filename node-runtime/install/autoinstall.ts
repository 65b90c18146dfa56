// `hvnode-node autoinstall`: the kernel command line → an install plan → its stages. The plan is
// made and checked before anything is written (disks resolved, sizes fitted, disks holding data
// refused); the stages then run in order. Stages that no issue has built yet say so and stop
// with exit 70, so a partial install never claims to be complete.

import { readFileSync } from 'node:fs';
import { ExitCode, HvError } from '../../common/index.ts';
import {
  type BootAction,
  type CmdlineResult,
  type NodeConfig,
  readCmdline,
  requireValidArgs,
} from '../config/index.ts';
import {
  type ApplyContext,
  buildSteps,
  checkVolumeGroups,
  detectLvAccess,
  devicePaths,
  findVolumeGroups,
  runSteps,
  takeDownSteps,
} from './apply.ts';
import { otherSlot } from './bootloader.ts';
import {
  type BootMedium,
  checkDisksFree,
  type DiskContents,
  describeContents,
  describeDisk,
  diskEnvFromEnv,
  findBootMedium,
  inspectDisk,
  listDisks,
  resolveTargets,
  type Targets,
} from './disks.ts';
import { findLiveImage, LIVE_MEDIUM, type LiveImage } from './image.ts';
import { formatLayout, type Layout, planLayout } from './layout.ts';
import { type Runner, runTool, ToolError } from './run.ts';
import { checkImageSettings, readImageFiles, settingsFiles } from './settings.ts';
import { callLocalBootTrigger, installGrub, installImage, installSettings } from './system.ts';
import { activeSlot, findInstalled, upgrade } from './upgrade.ts';

const WHERE = 'hvnode-node autoinstall';

/** What this run does to the disks. */
export type InstallMode = 'install' | 'reinstall' | 'uninstall';

export interface InstallPlan {
  mode: InstallMode;
  bootMedium: BootMedium;
  targets: Targets;
  ramMiB: number;
  /** Absent for uninstall. */
  layout?: Layout;
  /** What the disks hold now; absent when they could not be looked at (not root). */
  contents?: DiskContents[];
  /** The image to install (absent for uninstall and dry runs). */
  image?: LiveImage;
}

export interface AutoinstallOptions {
  /** The kernel command line (its text, or as parseCmdline read it). */
  cmdline: string | CmdlineResult;
  dryRun: boolean;
  json: boolean;
  reboot: boolean;
  env?: NodeJS.ProcessEnv;
  /** GRUB for the installed disk (default: the image's, /usr/lib/hvnode/grub). */
  payloadDir?: string;
  /** The running image's root, for /etc/shadow and /etc/hvnode-release (default: /). */
  imageRoot?: string;
  run?: Runner;
  /** Standard output (the plan, and the JSON result). */
  out?: (text: string) => void;
  /** Progress lines (stderr with --json, so that stdout stays one JSON document). */
  log?: (line: string) => void;
}

export function modeOf(action: BootAction | undefined): InstallMode {
  if (action === 'upgrade')
    throw new HvError('"upgrade" does not partition: it is done by the upgrade stage', { where: WHERE });
  if (action === 'uninstall') return 'uninstall';
  return action === 'reinstall' || action === 'firstboot' ? 'reinstall' : 'install';
}

/**
 * The configuration from the command line; every malformed argument, and every rule the
 * configuration breaks (bond options, netconsole, a VLAN on a bond slave), is reported at its
 * argument (exit 65) before anything is looked at or written.
 */
export function configFromCmdline(cmdline: string | CmdlineResult): NodeConfig {
  const result = readCmdline(cmdline);
  requireValidArgs(result, { where: WHERE });
  return result.config;
}

/** MemTotal in MiB, from /proc/meminfo's text. */
export function ramMiBFromMeminfo(meminfo: string): number {
  const kb = /^MemTotal:\s+(\d+)\s+kB/m.exec(meminfo)?.[1];
  if (kb === undefined) throw new HvError('cannot read MemTotal from /proc/meminfo', { where: WHERE });
  return Math.floor(Number(kb) / 1024);
}

function readRam(env: NodeJS.ProcessEnv): number {
  const file = env.HVNODE_MEMINFO || '/proc/meminfo';
  try {
    return ramMiBFromMeminfo(readFileSync(file, 'utf8'));
  } catch (err) {
    if (err instanceof HvError) throw err;
    throw new HvError(`cannot read ${file}: ${(err as Error).message}`, { where: WHERE });
  }
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Resolves, fits and checks everything; writes nothing. */
export async function makePlan(
  config: NodeConfig,
  opts: AutoinstallOptions,
  ctx?: ApplyContext,
): Promise<InstallPlan> {
  const mode = modeOf(config.boot?.action);
  const init = config.storage?.init;
  if (!init)
    throw new HvError('no storage_init on the kernel command line: which disks?', {
      where: WHERE,
      exitCode: ExitCode.dataError,
      hint: 'e.g. storage_init=/dev/sda, storage_init=ata:SERIAL, or storage_init alone for the first disk',
    });
  const env = diskEnvFromEnv(opts.env);
  const disks = listDisks(env);
  const bootMedium = findBootMedium(env, disks);
  const targets = resolveTargets(init, disks, env, bootMedium.disk);
  const ramMiB = readRam(opts.env ?? process.env);
  const layout =
    mode === 'uninstall'
      ? undefined
      : planLayout({
          hostVG: targets.hostVG,
          appVG: targets.appVG,
          ramMiB,
          volumes: config.storage?.volumes,
          overcommit: config.storage?.overcommit,
        });
  if (layout && layout.sizes.efi === 0)
    throw new HvError(
      'EFI cannot be 0 for an install: the boot menu lives on the EFI system partition, for BIOS boots too',
      {
        where: WHERE,
        exitCode: ExitCode.dataError,
        hint: 'leave EFI at its default (storage_vol with an empty first field or without EFI)',
      },
    );
  // the settings are computed now, so that what the image cannot take stops the install here
  if (layout && (ctx || !opts.dryRun)) checkSettings(config, opts);
  const plan: InstallPlan = { mode, bootMedium, targets, ramMiB, layout };
  if (layout && !opts.dryRun)
    plan.image = findLiveImage((opts.env ?? process.env).HVNODE_LIVE_MEDIUM || LIVE_MEDIUM, WHERE);
  if (!ctx) return plan;
  plan.contents = [];
  for (const d of [...targets.hostVG, ...targets.appVG])
    plan.contents.push(await looking(`what ${d.path} holds`, () => inspectDisk(ctx.run, d)));
  checkDisksFree(plan.contents, config.boot?.action);
  const vgs = await looking('the LVM volume groups', () => findVolumeGroups(ctx, devicePaths(disks)));
  checkVolumeGroups(vgs, targets);
  return plan;
}

/** The running image's root, whose /etc the settings stage edits (tests: HVNODE_IMAGE_ROOT). */
function imageRootOf(opts: AutoinstallOptions): string | undefined {
  return opts.imageRoot ?? ((opts.env ?? process.env).HVNODE_IMAGE_ROOT || undefined);
}

/**
 * Everything the settings stage would refuse, before the first write: an account the image
 * lacks for adminpw=/rootpw= (exit 65, at the argument), then the whole stage's files computed
 * (they are computed again, from the same input, when the stage runs).
 */
function checkSettings(config: NodeConfig, opts: AutoinstallOptions): void {
  const image = readImageFiles(imageRootOf(opts) ?? '/');
  const report = checkImageSettings(config, image);
  if (report.hasErrors)
    throw new HvError('the kernel command line asks for what this image cannot do', {
      where: WHERE,
      exitCode: ExitCode.dataError,
      diagnostics: report.errors,
    });
  settingsFiles(config, image);
}

/** A tool that fails while looking at the disks is a failure of the command, not an internal error. */
async function looking<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof ToolError)) throw err;
    throw new HvError(`cannot find out ${what}: ${err.message}`, { where: WHERE, cause: err });
  }
}

export function formatPlan(plan: InstallPlan): string {
  const lines = [`Autoinstall: ${plan.mode}`];
  lines.push(
    `Boot medium: ${plan.bootMedium.disk ? describeDisk(plan.bootMedium.disk) : 'none'}: ${plan.bootMedium.how}`,
  );
  lines.push(`HostVG disks: ${plan.targets.hostVG.map(describeDisk).join('; ')}`);
  if (plan.targets.appVG.length > 0)
    lines.push(`AppVG disks: ${plan.targets.appVG.map(describeDisk).join('; ')}`);
  if (plan.contents === undefined) lines.push('Existing data: not checked (needs root)');
  for (const c of plan.contents ?? [])
    if (c.signatures.length > 0)
      lines.push(
        `${c.disk.path} holds ${describeContents(c)}: it is ${plan.mode === 'uninstall' ? 'wiped' : 'overwritten'}`,
      );
  if (plan.mode === 'uninstall')
    lines.push('Every signature on these disks is wiped, and HostVG/AppVG removed.');
  else lines.push(`RAM: ${plan.ramMiB} MiB`);
  return `${lines.join('\n')}\n${plan.layout ? formatLayout(plan.layout) : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Stages.

export interface Stage {
  name: string;
  title: string;
  /** Absent: not built yet. */
  run?: () => Promise<void>;
}

export type StageStatus = 'done' | 'not built yet' | 'not run';

function stagesOf(
  plan: InstallPlan,
  ctx: ApplyContext,
  config: NodeConfig,
  opts: AutoinstallOptions,
): Stage[] {
  const disks = [...plan.targets.hostVG, ...plan.targets.appVG];
  const steps = takeDownSteps(ctx, disks);
  if (plan.layout) steps.push(...buildSteps(ctx, plan.layout));
  const diskStage: Stage = {
    name: 'disks',
    title: plan.mode === 'uninstall' ? 'wiping the disks' : 'partitioning and formatting the disks',
    run: async () => {
      if (ctx.lvAccess === 'loop' && plan.layout)
        ctx.log('device-mapper is not available: logical volumes are formatted through loop devices');
      await runSteps(ctx, steps, WHERE);
    },
  };
  const layout = plan.layout;
  const image = plan.image;
  const later: Stage[] = [];
  if (layout && image) {
    const env = opts.env ?? process.env;
    const sys = {
      ctx,
      config,
      layout,
      image,
      payloadDir: opts.payloadDir ?? (env.HVNODE_GRUB_PAYLOAD || undefined),
      imageRoot: imageRootOf(opts),
    };
    later.push(
      { name: 'image', title: 'installing the image into Root', run: () => installImage(sys) },
      {
        name: 'bootloader',
        title: 'installing the bootloader (GRUB for BIOS and UEFI)',
        run: async () => {
          await installGrub(sys);
        },
      },
      {
        name: 'settings',
        title: 'writing the settings to /config',
        run: async () => {
          await installSettings(sys);
        },
      },
    );
  }
  const trigger = config.localBootTrigger;
  if (trigger && plan.mode !== 'uninstall')
    later.push({
      name: 'local-boot-trigger',
      title: 'calling local_boot_trigger',
      run: async () => {
        await callLocalBootTrigger(trigger, ctx.log, fetch, config.hostname);
      },
    });
  if (opts.reboot)
    later.push({
      name: 'reboot',
      title: 'rebooting',
      run: async () => {
        await ctx.run('systemctl', ['reboot']);
      },
    });
  return [diskStage, ...later];
}

/** Runs the stages in order until one is not built yet; returns each stage's status. */
async function runStages(stages: Stage[], log: (line: string) => void): Promise<Record<string, StageStatus>> {
  const status: Record<string, StageStatus> = Object.fromEntries(stages.map((s) => [s.name, 'not run']));
  for (const stage of stages) {
    if (!stage.run) {
      log(`${stage.title}: not built yet`);
      status[stage.name] = 'not built yet';
      break;
    }
    log(`${stage.title}`);
    await stage.run();
    status[stage.name] = 'done';
  }
  return status;
}

function planJson(plan: InstallPlan): unknown {
  return {
    mode: plan.mode,
    bootMedium: { disk: plan.bootMedium.disk?.path ?? null, how: plan.bootMedium.how },
    targets: { hostVG: plan.targets.hostVG, appVG: plan.targets.appVG },
    ramMiB: plan.ramMiB,
    layout: plan.layout ?? null,
    existing: plan.contents?.map((c) => ({ disk: c.disk.path, signatures: c.signatures })) ?? null,
  };
}

/** `upgrade` on the command line: the booted image into the installed node's spare slot. */
async function upgradeFromMedium(
  opts: AutoinstallOptions,
  run: Runner,
  log: (line: string) => void,
  out: (text: string) => void,
): Promise<number> {
  if (opts.dryRun) {
    const inst = await findInstalled(run, diskEnvFromEnv(opts.env));
    const from = activeSlot(inst);
    out(
      `Upgrade: the booted image into ${otherSlot(from)} on ${inst.esp.replace(/\d+$/, '')}; ${from} stays\n`,
    );
    return ExitCode.ok;
  }
  if (!isRoot()) throw new HvError('upgrade needs root', { where: WHERE, exitCode: ExitCode.precondition });
  const env = opts.env ?? process.env;
  const result = await upgrade({
    run,
    env: diskEnvFromEnv(opts.env),
    log,
    liveMedium: env.HVNODE_LIVE_MEDIUM || undefined,
  });
  if (opts.json) out(`${JSON.stringify({ upgrade: result }, null, 2)}\n`);
  if (opts.reboot) {
    log('rebooting');
    await run('systemctl', ['reboot']);
  }
  return ExitCode.ok;
}

/** The whole command; returns the exit code. */
export async function autoinstall(opts: AutoinstallOptions): Promise<number> {
  const out = opts.out ?? ((t: string) => process.stdout.write(t));
  const log = opts.log ?? ((l: string) => (opts.json ? process.stderr : process.stdout).write(`${l}\n`));
  const config = configFromCmdline(opts.cmdline);
  const run = opts.run ?? runTool;
  if (config.boot?.action === 'upgrade' || config.boot?.localBoot)
    return upgradeFromMedium(opts, run, log, out);
  if (!isRoot() && !opts.dryRun)
    throw new HvError('autoinstall needs root', {
      where: WHERE,
      exitCode: ExitCode.precondition,
      hint: 'run it as root, or look at the plan with --dry-run',
    });
  const ctx: ApplyContext | undefined = isRoot()
    ? { run, log, lvAccess: await detectLvAccess(run), sysfs: diskEnvFromEnv(opts.env).sysfs }
    : undefined;
  const plan = await makePlan(config, opts, ctx);
  if (!opts.json) out(formatPlan(plan));
  if (opts.dryRun || !ctx) {
    if (opts.json) out(`${JSON.stringify({ plan: planJson(plan), stages: {} }, null, 2)}\n`);
    return ExitCode.ok;
  }
  const status = await runStages(stagesOf(plan, ctx, config, opts), log);
  if (opts.json) out(`${JSON.stringify({ plan: planJson(plan), stages: status }, null, 2)}\n`);
  // a stage not built yet was named in the log: the install is not complete
  return Object.values(status).includes('not built yet') ? ExitCode.software : ExitCode.ok;
}
