// What the screens do to the machine, through node-runtime's own code: the facts the installer
// and the Status screen show (SystemFacts), the install (autoinstall with the NodeConfig the
// screens built: the same plan and stages as the kernel command line), Apply (settingsFiles into
// the /config store, then persist's restore so the running system shows them) and the engine's
// CA fingerprint. --dry-run: every function that would change something returns what it would do.

import { existsSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { basename, join } from 'node:path';
import { ExitCode, HvError, parseMountinfo } from '../common/index.ts';
import {
  autoinstall,
  diskEnvFromEnv,
  dmiUuid,
  findInstalled,
  formatCmdline,
  kernelCmdlineFile,
  type NodeConfig,
  nodeMac,
  persistOptionsFromEnv,
  readImageFiles,
  readKernelCmdline,
  readRelease,
  registerWithEngine,
  restorePersisted,
  runTool,
  type SettingFile,
  type SystemFacts,
  settingsFiles,
  statelessPathsFromEnv,
  storeSettings,
  uploadConfig,
} from '../node-runtime/index.ts';
import { disksInUse, type InstallFacts } from './model/installer.ts';

/** Where the setup screens keep the NodeConfig they applied (in /config, like every setting). */
export const SAVED_CONFIG = '/etc/hvnode/node-config.json';

const isRoot = () => process.getuid?.() === 0;

export async function installFacts(facts: SystemFacts, env: NodeJS.ProcessEnv): Promise<InstallFacts> {
  const disks = facts.disks();
  const imageRoot = env.HVNODE_IMAGE_ROOT || '/';
  const release = readRelease(join(imageRoot, 'etc/hvnode-release'));
  const result: InstallFacts = {
    disks,
    ramMiB: facts.ramMiB(),
    imageVersion: release.version ?? 'unknown',
  };
  const boot = facts.bootMedium(disks).disk?.path;
  if (boot) result.bootMedium = boot;
  result.inUse = runningSystemDisks(disks, env);
  if (isRoot()) {
    try {
      const inst = await findInstalled(runTool, diskEnvFromEnv(env));
      result.installedVersion = inst.record.images.Root ?? inst.record.images.RootBackup ?? 'unknown';
    } catch {
      // nothing installed (or unreadable): a fresh install
    }
    result.contents = {};
    for (const d of disks) {
      try {
        result.contents[d.path] = await facts.diskContents(d);
      } catch {
        // not a block device here (a test's sysfs), or wipefs failed: autoinstall checks again
      }
    }
  }
  return result;
}

const readOr = (file: string) => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

/** The disks the running system mounts or swaps on (HVNODE_MOUNTINFO, HVNODE_SYSFS apply). */
export function runningSystemDisks(
  disks: InstallFacts['disks'],
  env: NodeJS.ProcessEnv,
): Record<string, string> {
  const diskEnv = diskEnvFromEnv(env);
  const uses = parseMountinfo(readOr(diskEnv.mountinfo))
    .filter((m) => m.source.startsWith('/dev/'))
    .map((m) => ({ source: m.source, use: `mounted at ${m.mountPoint}` }));
  for (const line of readOr('/proc/swaps').split('\n').slice(1)) {
    const source = line.split(/\s+/)[0];
    if (source?.startsWith('/dev/')) uses.push({ source, use: 'swap' });
  }
  const kernelName = (source: string) => {
    try {
      return basename(realpathSync(source));
    } catch {
      return undefined;
    }
  };
  const holders = (name: string) => {
    try {
      return readdirSync(join(diskEnv.sysfs, 'class/block', name, 'slaves'));
    } catch {
      return [];
    }
  };
  return disksInUse(disks, uses, kernelName, holders);
}

/**
 * The kernel command line autoinstall runs for `config`: its arguments, plus the running
 * system's console=, crashkernel= and other arguments NodeConfig keeps for the installed
 * bootloader (so a serial-console install boots with its console).
 */
export function installCmdline(config: NodeConfig, env: NodeJS.ProcessEnv): string {
  let running: string[] = [];
  try {
    running = readKernelCmdline(kernelCmdlineFile(env)).config.bootloaderArgs ?? [];
  } catch {
    running = [];
  }
  const merged = running.length > 0 ? { ...config, bootloaderArgs: running } : config;
  return formatCmdline(merged);
}

/** autoinstall's plan for `config` (nothing written), or its refusal as an HvError. */
export async function installPlan(config: NodeConfig, env: NodeJS.ProcessEnv): Promise<string> {
  let text = '';
  await autoinstall({
    cmdline: installCmdline(config, env),
    dryRun: true,
    json: false,
    reboot: false,
    env,
    out: (t) => {
      text += t;
    },
    log: (l) => {
      text += `${l}\n`;
    },
  });
  return text;
}

/** Runs the install (or, dry-run, says what it would run); returns autoinstall's exit code. */
export async function runInstall(
  config: NodeConfig,
  env: NodeJS.ProcessEnv,
  dryRun: boolean,
  log: (line: string) => void,
): Promise<number> {
  const cmdline = installCmdline(config, env);
  if (dryRun) {
    log('dry run: nothing is written. The installer would run:');
    log(`  hvnode-node autoinstall with the command line: ${cmdline}`);
    log(`NodeConfig: ${JSON.stringify(config)}`);
    return 0;
  }
  const release = installLock(env);
  try {
    return await autoinstall({
      cmdline,
      dryRun: false,
      json: false,
      reboot: false,
      env,
      out: (t) => {
        for (const l of t.replace(/\n$/, '').split('\n')) log(l);
      },
      log,
    });
  } finally {
    release();
  }
}

/**
 * The kernel's informational messages (a disk's partitions read again, a filesystem mounted)
 * go to the consoles and would land in the middle of the installer's screen on a serial line:
 * from here on only warnings and worse reach them, as with the kernel argument "quiet" (dmesg
 * and the journal keep everything). Only on the machine itself: not in a dry run or a test.
 */
export function quietKernelConsole(env: NodeJS.ProcessEnv, dryRun: boolean): void {
  const faked = Object.keys(env).some((k) => k.startsWith('HVNODE_'));
  if (dryRun || faked || !isRoot()) return;
  try {
    writeFileSync('/proc/sys/kernel/printk', '4\n');
  } catch {
    // not Linux, or no /proc: the screen is redrawn with Ctrl-L
  }
}

/**
 * One install at a time: the installer runs on tty1 and on the serial console at once, and the
 * first Install wins. A lock left by a process that is gone is taken over. Returns the release.
 */
export function installLock(env: NodeJS.ProcessEnv): () => void {
  const file = join(env.HVNODE_RUN || '/run', 'hvnode-installer.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      return () => rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(file, 'utf8').trim());
      let alive = false;
      try {
        alive = pid > 0 && process.kill(pid, 0);
      } catch (e) {
        alive = (e as NodeJS.ErrnoException).code === 'EPERM';
      }
      if (alive)
        throw new HvError(`an install is already running (process ${pid}, on another console)`, {
          exitCode: ExitCode.precondition,
          hint: 'wait for it on that console; this one shows nothing new until it is done',
        });
      rmSync(file, { force: true });
    }
  }
  throw new HvError(`cannot take the install lock ${file}`, { exitCode: ExitCode.precondition });
}

/** The config the setup screens applied last, or one made of what the system shows. */
export function loadSaved(env: NodeJS.ProcessEnv, hostname: string): NodeConfig {
  const file = join(persistOptionsFromEnv(env).configRoot, SAVED_CONFIG);
  if (existsSync(file)) {
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as NodeConfig;
    } catch (err) {
      throw new HvError(`cannot read ${file}: ${(err as Error).message}`, {
        hint: 'remove it to start from the running system',
      });
    }
  }
  return /^[A-Za-z0-9.-]+$/.test(hostname) && hostname !== 'localhost' ? { hostname } : {};
}

/** The files Apply writes for `config`: the settings, and the config itself. */
export function applyFiles(config: NodeConfig, env: NodeJS.ProcessEnv): SettingFile[] {
  const image = readImageFiles(env.HVNODE_ROOT || '/');
  return [
    ...settingsFiles(config, image),
    { path: SAVED_CONFIG, content: `${JSON.stringify(config, null, 2)}\n`, mode: 0o600 },
  ];
}

/**
 * Apply: the settings into the /config store (the same files and store as autoinstall's
 * settings stage), then persist's restore bind-mounts them over the running system. Returns
 * what it did (dry-run: what it would do) as lines.
 */
export async function applyConfig(
  config: NodeConfig,
  env: NodeJS.ProcessEnv,
  dryRun: boolean,
): Promise<string[]> {
  const files = applyFiles(config, env);
  const opts = persistOptionsFromEnv(env);
  if (dryRun)
    return [
      'dry run: nothing is written.',
      `NodeConfig: ${JSON.stringify(config)}`,
      `would store in ${opts.configRoot}:`,
      ...files.map((f) => `  ${f.path}`),
      'would bind-mount them over the running system (persist --restore)',
    ];
  const written = await storeSettings(opts.configRoot, files);
  const lines = [`stored in ${opts.configRoot}: ${written.join(' ')}`];
  const warnings: string[] = [];
  const result = await restorePersisted(opts, {
    info: () => {},
    warn: (l: string) => warnings.push(l),
  } as Parameters<typeof restorePersisted>[1]);
  if (result.restored.length > 0) lines.push(`now in place: ${result.restored.join(' ')}`);
  lines.push(...warnings);
  if (opts.root === '/' && config.hostname) {
    await runTool('hostname', [config.hostname]).catch((e: Error) => lines.push(`hostname: ${e.message}`));
  }
  return lines;
}

/**
 * Engine's "Apply and register", after Apply stored the settings: the host-register protocol with
 * the stored server, port and accepted CA fingerprint (none: trust on first use, recorded), the
 * same client as the stateless node's; a node registered before is not registered again. Returns
 * what happened as lines; a refusal or an unreachable engine is a line, not a crash.
 */
export async function registerEngine(
  config: NodeConfig,
  env: NodeJS.ProcessEnv,
  dryRun: boolean,
): Promise<string[]> {
  const e = config.engine;
  if (!e) return ['no engine server: nothing to register with'];
  const paths = statelessPathsFromEnv(env);
  const name = config.hostname ?? osHostname();
  const target = {
    server: e.server,
    ...(e.port ? { port: e.port } : {}),
    ...(e.fingerprint ? { fingerprint: e.fingerprint } : {}),
  };
  if (dryRun) return [`would register with ${e.server}:${e.port ?? 443} as ${name} (host-register protocol)`];
  const uniqueId = dmiUuid(paths.dmiFile);
  if (!uniqueId) return [`register: no DMI system UUID in ${paths.dmiFile}: the engine needs one`];
  const lines: string[] = [];
  try {
    const r = await registerWithEngine(
      target,
      { name, uniqueId },
      {
        configRoot: paths.configRoot,
        root: paths.root,
        log: (l) => lines.push(l),
      },
    );
    lines.push(
      r.already
        ? `registered with ${e.server} before (${r.record.registeredAt})`
        : `registered with ${e.server} as ${name}: pending approval in the engine (CA SHA-256 ${r.record.caFingerprint}${r.trustedOnFirstUse ? ', trusted on first use' : ''})`,
    );
  } catch (err) {
    lines.push(`register: ${(err as Error).message}`);
  }
  return lines;
}

/**
 * Config server's "Upload current config": what /config holds, as `hvnode-node upload` sends it,
 * for an admin to approve as this node's bundle (by the MAC of BOOTIF or of the NIC with the
 * default route). The server's certificate must be trusted here. Returns lines, as above.
 */
export async function uploadCurrentConfig(
  server: string,
  env: NodeJS.ProcessEnv,
  dryRun: boolean,
): Promise<string[]> {
  const paths = statelessPathsFromEnv(env);
  const url = server.replace(/\/+$/, '');
  try {
    const mac = nodeMac(
      readKernelCmdline(kernelCmdlineFile(env), 'hvnode-setup: upload').config,
      paths.discover,
    );
    if (dryRun) return [`would upload ${paths.configRoot} for ${mac} to ${url}`];
    const r = await uploadConfig({
      server: url,
      mac,
      configRoot: paths.configRoot,
      root: paths.root,
      insecure: false,
      log: () => {},
    });
    return [
      `uploaded ${r.id} (${r.entries} entries) for ${mac}: ${r.state}`,
      `the admin approves it with: hvnode-config-server admin upload approve ${r.id} --mac ${mac}`,
    ];
  } catch (err) {
    return [`upload: ${(err as Error).message}`];
  }
}
