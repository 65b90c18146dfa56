// The installer's screens as view-models: Welcome → Keyboard → Boot device → HostVG disks →
// Storage sizes → Console password → Confirm (the plan) → Progress → Finished/Failed. They end in
// a NodeConfig that `hvnode-node autoinstall` runs (the same plan and stages); the refusals
// autoinstall knows are checked with its own functions (checkDisksFree, planLayout) on the
// screen where the choice was made.
//
// The keyboard layout goes into the NodeConfig (`keyboard`, written to /etc/default/keyboard)
// only when it differs from the image's own layout (InstallFacts.keyboard, `us` when not
// known: the image builder's default): what the image already has needs no file in /config.

import {
  checkDisksFree,
  DEFAULT_SIZES,
  type DiskContents,
  type DiskFact,
  defaultSwapMiB,
  describeContents,
  formatMiB,
  type NodeConfig,
  planLayout,
  validateNodeConfig,
} from '../../node-runtime/index.ts';
import { sha512Crypt } from '../crypt.ts';
import {
  applyChecks,
  button,
  checkPassword,
  checkValue,
  choice,
  clearErrors,
  errorLines,
  type Field,
  field,
  info,
  type Option,
  type Page,
  password,
  text,
  val,
} from './form.ts';

/** What the installer knows about the machine (from SystemFacts), as plain data. */
export interface InstallFacts {
  disks: DiskFact[];
  /** The disk the live image booted from. */
  bootMedium?: string;
  ramMiB: number;
  /** The version of the image on the medium. */
  imageVersion: string;
  /** The version installed on this machine's disks, when there is one. */
  installedVersion?: string;
  /** What each disk holds (by path), when it could be looked at (root). */
  contents?: Record<string, DiskContents>;
  /** Disks the running system uses (by path → what for: "mounted at /", "swap"). */
  inUse?: Record<string, string>;
  /** The image's keyboard layout, `LAYOUT[-VARIANT]` (its /etc/default/keyboard); default `us`. */
  keyboard?: string;
}

export type InstallAction = 'install' | 'upgrade' | 'reinstall';

/** The layout an image has when its /etc/default/keyboard is not known (the builder's default). */
export const IMAGE_KEYBOARD = 'us';

/** XKB layout names (NodeConfig's `keyboard`, the schema's `keyboard` pattern). */
export const KEYBOARDS: Option[] = [
  ['us', 'U.S. English'],
  ['gb', 'U.K. English'],
  ['de', 'German'],
  ['fr', 'French'],
  ['es', 'Spanish'],
  ['it', 'Italian'],
  ['ch', 'Swiss German'],
  ['jp', 'Japanese'],
  ['br', 'Portuguese (Brazil)'],
  ['ru', 'Russian'],
].map(([value, label]) => ({ value: value as string, label: label as string }));

const OTHER = 'other';

export function majorOf(version: string): string {
  return version.split('.')[0] ?? version;
}

/** "/dev/sda  QEMU HARDDISK   ata   QM00001   20.0 GiB" (fixed columns). */
export function diskRow(d: DiskFact): string {
  const col = (s: string | undefined, n: number) => (s ?? '-').slice(0, n).padEnd(n);
  return `${col(d.path, 14)} ${col(d.model, 16)} ${col(d.bus, 6)} ${col(d.serial, 14)} ${formatMiB(Math.floor(d.sizeBytes / 2 ** 20)).padStart(9)}`;
}
export const DISK_HEADER = `${'Device'.padEnd(14)} ${'Model'.padEnd(16)} ${'Bus'.padEnd(6)} ${'Serial'.padEnd(14)} ${'Size'.padStart(9)}`;

/**
 * The disks the running system uses, by path: what is mounted (through device-mapper and md
 * layers: `holders` gives the devices below one), and active swap. `kernelName` turns a source
 * (/dev/vda2, /dev/mapper/vg-root) into its kernel name (vda2, dm-0), undefined when it is not
 * a device. Such a disk is never offered as a target (the build host's own root disk, say).
 */
export function disksInUse(
  disks: DiskFact[],
  uses: { source: string; use: string }[],
  kernelName: (source: string) => string | undefined,
  holders: (name: string) => string[],
): Record<string, string> {
  const found: Record<string, string> = {};
  const mark = (name: string, use: string, depth = 0) => {
    const disk = disks.find((d) => d.name === name || d.partitions.includes(name));
    if (disk) {
      found[disk.path] ??= use;
      return;
    }
    if (depth < 8) for (const below of holders(name)) mark(below, use, depth + 1);
  };
  for (const { source, use } of uses) {
    const name = kernelName(source);
    if (name) mark(name, use);
  }
  return found;
}

export class Installer {
  readonly facts: InstallFacts;
  readonly welcome: Page;
  readonly keyboard: Page;
  readonly bootDevice: Page;
  readonly hostVG: Page;
  readonly sizes: Page;
  readonly password: Page;
  readonly confirm: Page;

  constructor(facts: InstallFacts) {
    this.facts = facts;
    this.welcome = this.makeWelcome();
    const imageLayout = this.imageKeyboard;
    const layouts = KEYBOARDS.some((o) => o.value === imageLayout)
      ? KEYBOARDS
      : [{ value: imageLayout, label: `${imageLayout} (the image's layout)` }, ...KEYBOARDS];
    this.keyboard = {
      id: 'keyboard',
      title: 'Keyboard Layout Selection',
      fields: [
        {
          ...choice('layout', 'Layout', layouts, imageLayout),
          kind: 'list',
          cursor: layouts.findIndex((o) => o.value === imageLayout),
        },
        button('next', 'Continue'),
      ],
    };
    const diskOptions = facts.disks.map((d) => ({
      value: d.path,
      label: diskRow(d),
      ...(this.refusal(d) ? { refused: this.refusal(d) } : {}),
    }));
    // preselected: the first disk that may be taken as it is (never the boot medium, a disk the
    // running system uses, or one holding data); none when there is no such disk
    const firstUsable =
      diskOptions.find((o) => !o.refused && !this.holdsData(o.value))?.value ??
      diskOptions.find((o) => !o.refused)?.value ??
      OTHER;
    this.bootDevice = {
      id: 'boot',
      title: 'Boot device',
      intro: ['Please select the disk to use for booting hvnode.'],
      fields: [
        {
          id: 'disk',
          label: 'Disk',
          kind: 'list',
          header: DISK_HEADER,
          options: [...diskOptions, { value: OTHER, label: 'Other device: type its path below' }],
          value: firstUsable,
          cursor: Math.max(
            0,
            diskOptions.findIndex((o) => o.value === firstUsable),
          ),
        },
        {
          ...text('path', 'Device path', '', 'for "Other device"'),
          visible: () => val(this.bootDevice, 'disk') === OTHER,
        },
        button('next', 'Continue'),
      ],
    };
    this.hostVG = {
      id: 'hostvg',
      title: 'HostVG disks',
      intro: ['The boot device always holds HostVG; select other disks to add to it (Space).'],
      fields: [
        {
          id: 'disks',
          label: 'Disks',
          kind: 'multi',
          header: DISK_HEADER,
          options: [],
          values: [],
          value: '',
          cursor: 0,
        },
        button('next', 'Continue'),
      ],
    };
    const swap = defaultSwapMiB(facts.ramMiB);
    this.sizes = {
      id: 'sizes',
      title: 'Storage sizes',
      intro: ['Sizes in MB. Data -1 takes the rest of HostVG.'],
      fields: [
        info('efi', 'UEFI/Bios', `${DEFAULT_SIZES.efi} MB (fixed)`),
        text('root', 'Root & RootBackup', String(DEFAULT_SIZES.root), 'each'),
        text('swap', 'Swap', String(swap), `oVirt's formula for ${facts.ramMiB} MiB RAM`),
        text('config', 'Config', String(DEFAULT_SIZES.config)),
        text('logging', 'Logging', String(DEFAULT_SIZES.logging)),
        text('data', 'Data', String(DEFAULT_SIZES.data), '-1 = the rest'),
        button('next', 'Continue'),
      ],
    };
    this.password = {
      id: 'password',
      title: 'Console password',
      intro: ['Require a password for local console access (user admin).', 'Leave both empty for none.'],
      fields: [
        text('hostname', 'Hostname', '', 'optional'),
        password('password', 'Password'),
        password('confirm', 'Confirm password'),
        button('next', 'Continue'),
      ],
    };
    this.confirm = {
      id: 'confirm',
      title: 'Confirm',
      intro: ['Nothing has been written yet. This is what Install does:'],
      fields: [button('install', 'Install'), button('back', 'Back')],
      output: [],
    };
  }

  private makeWelcome(): Page {
    const { imageVersion: to, installedVersion: from } = this.facts;
    const options: Option[] = [];
    if (from === undefined) options.push({ value: 'install', label: `Install hvnode ${to}` });
    else {
      const major = majorOf(from) !== majorOf(to);
      const verb = from === to ? 'Reinstall' : from < to ? 'Upgrade' : 'Downgrade';
      if (from !== to)
        options.push({
          value: 'upgrade',
          label: `${verb} hvnode ${from} to ${to}`,
          ...(major
            ? { refused: `a major version ${verb.toLowerCase()}: uninstall the existing version first` }
            : {}),
        });
      options.push({ value: 'reinstall', label: `Reinstall hvnode ${to} (the disks are wiped)` });
    }
    const first = options.find((o) => !o.refused)?.value ?? '';
    return {
      id: 'welcome',
      title: 'Welcome',
      intro: [
        `hvnode ${to}: a stateless hypervisor node.`,
        from === undefined
          ? 'No installed hvnode was found on this machine.'
          : `hvnode ${from} is installed.`,
      ],
      fields: [
        {
          ...choice('action', 'Action', options, first),
          kind: 'list',
          cursor: options.findIndex((o) => o.value === first),
        },
      ],
    };
  }

  /** The image's own layout: a valid facts.keyboard, else `us`. */
  get imageKeyboard(): string {
    const k = this.facts.keyboard;
    return k && checkValue(k, 'keyboard') === undefined ? k : IMAGE_KEYBOARD;
  }

  get action(): InstallAction {
    return val(this.welcome, 'action') as InstallAction;
  }

  /** Why a disk cannot be the target at all (the medium booted from, read-only). */
  private refusal(d: DiskFact): string | undefined {
    if (d.path === this.facts.bootMedium) return 'the medium this node booted from';
    const use = this.facts.inUse?.[d.path];
    if (use) return `in use: ${use}`;
    if (d.readOnly) return 'read-only';
    return undefined;
  }

  private diskAt(path: string): DiskFact | undefined {
    return this.facts.disks.find((d) => d.path === path);
  }

  /** The disk chosen on Boot device (undefined until it checks). */
  bootDisk(): DiskFact | undefined {
    const v = val(this.bootDevice, 'disk');
    return this.diskAt(v === OTHER ? val(this.bootDevice, 'path') : v);
  }

  private holdsData(path: string): boolean {
    return (this.facts.contents?.[path]?.signatures.length ?? 0) > 0;
  }

  /** A disk holding data, refused as autoinstall refuses it (checkDisksFree), or undefined. */
  private dataRefusal(disks: DiskFact[]): string | undefined {
    const contents = disks.flatMap((d) => this.facts.contents?.[d.path] ?? []);
    try {
      checkDisksFree(contents, this.action === 'reinstall' ? 'reinstall' : undefined);
      return undefined;
    } catch (err) {
      const used = contents.filter((c) => c.signatures.length > 0);
      return `${used.map((c) => `${c.disk.path} holds ${describeContents(c)}`).join('; ')}: choose Reinstall on the Welcome screen to overwrite it${err instanceof Error ? '' : ''}`;
    }
  }

  checkWelcome(): boolean {
    clearErrors(this.welcome);
    const f = field(this.welcome, 'action');
    const o = f.options?.find((x) => x.value === f.value);
    if (!o) f.error = 'nothing to do';
    else if (o.refused) f.error = `refused: ${o.refused}`;
    return !f.error;
  }

  checkBootDevice(): boolean {
    const p = this.bootDevice;
    clearErrors(p);
    const chosen = val(p, 'disk');
    if (chosen === OTHER) {
      const path = val(p, 'path');
      const bad = checkValue(path, 'devicePath', true);
      if (bad) return applyChecks(p, { path: bad });
      const d = this.diskAt(path);
      if (!d) return applyChecks(p, { path: `${path}: no such disk` });
      const r = this.refusal(d);
      if (r) return applyChecks(p, { path: `${path} is ${r}` });
    } else {
      const o = field(p, 'disk').options?.find((x) => x.value === chosen);
      if (o?.refused) return applyChecks(p, { disk: `${chosen} is ${o.refused}` });
    }
    const disk = this.bootDisk();
    if (!disk) return applyChecks(p, { disk: 'choose a disk' });
    const data = this.dataRefusal([disk]);
    if (data) return applyChecks(p, { [chosen === OTHER ? 'path' : 'disk']: data });
    this.refreshHostVG();
    return true;
  }

  /** HostVG's choices: every usable disk but the boot device. */
  private refreshHostVG(): void {
    const f = field(this.hostVG, 'disks');
    const boot = this.bootDisk()?.path;
    f.options = this.facts.disks
      .filter((d) => d.path !== boot)
      .map((d) => ({
        value: d.path,
        label: diskRow(d),
        ...(this.refusal(d) ? { refused: this.refusal(d) } : {}),
      }));
    f.values = (f.values ?? []).filter((v) => f.options?.some((o) => o.value === v));
    f.cursor = 0;
  }

  hostVGDisks(): DiskFact[] {
    const boot = this.bootDisk();
    const more = (field(this.hostVG, 'disks').values ?? []).flatMap((p) => this.diskAt(p) ?? []);
    return boot ? [boot, ...more] : more;
  }

  checkHostVG(): boolean {
    const p = this.hostVG;
    clearErrors(p);
    const f = field(p, 'disks');
    const refused = (f.values ?? [])
      .map((v) => f.options?.find((o) => o.value === v))
      .find((o) => o?.refused);
    if (refused) return applyChecks(p, { disks: `${refused.value} is ${refused.refused}` });
    const data = this.dataRefusal(this.hostVGDisks().slice(1));
    return applyChecks(p, { disks: data });
  }

  /** The volume sizes as typed (MB); errors for what is not a number. */
  private volumes(): { sizes: Record<string, number>; errors: Record<string, string | undefined> } {
    const sizes: Record<string, number> = {};
    const errors: Record<string, string | undefined> = {};
    for (const id of ['root', 'swap', 'config', 'logging', 'data']) {
      const v = val(this.sizes, id);
      const min = id === 'data' ? -1 : 0;
      if (!/^-?\d+$/.test(v) || Number(v) < min)
        errors[id] = id === 'data' ? 'MB, or -1 for the rest' : 'MB (a whole number)';
      else sizes[id] = Number(v);
    }
    if (sizes.root === 0) errors.root = 'Root holds the image: it cannot be 0';
    if (sizes.config === 0) errors.config = 'Config holds the settings: it cannot be 0';
    return { sizes, errors };
  }

  /** Checks the sizes with autoinstall's own layout planner (too small a disk is refused here). */
  checkSizes(): boolean {
    const p = this.sizes;
    clearErrors(p);
    p.output = [];
    const { sizes, errors } = this.volumes();
    if (!applyChecks(p, errors)) return false;
    try {
      const layout = planLayout({
        hostVG: this.hostVGDisks().map((d) => ({ path: d.path, sizeBytes: d.sizeBytes })),
        appVG: [],
        ramMiB: this.facts.ramMiB,
        volumes: sizes,
      });
      const data = layout.vgs[0]?.lvs.find((lv) => lv.name === 'Data');
      p.output = [
        `HostVG: ${formatMiB(layout.vgs[0]?.sizeMiB ?? 0)}; Data gets ${data ? formatMiB(data.sizeMiB) : 'nothing'}`,
      ];
      return true;
    } catch (err) {
      p.output = errorLines(err);
      // the error goes on the largest of the volumes the planner names: the one to make smaller
      const whole = p.output.join(' ');
      const named = ['root', 'swap', 'config', 'logging', 'data'].filter((id) =>
        new RegExp(`\\b${id}\\b`, 'i').test(whole),
      );
      const which = named.sort((a, b) => (sizes[b] ?? 0) - (sizes[a] ?? 0))[0] ?? 'data';
      return applyChecks(p, { [which]: 'does not fit on the chosen disks (see below)' });
    }
  }

  checkPasswordPage(): boolean {
    const p = this.password;
    clearErrors(p);
    return applyChecks(p, {
      hostname: checkValue(val(p, 'hostname'), 'hostname'),
      ...checkPassword(field(p, 'password').value, field(p, 'confirm').value),
    });
  }

  /** The NodeConfig that autoinstall runs (salt fixed only by tests). */
  config(salt?: string): NodeConfig {
    if (this.action === 'upgrade') return { boot: { action: 'upgrade' } };
    const { sizes } = this.volumes();
    const pw = field(this.password, 'password').value;
    const hostname = val(this.password, 'hostname');
    const layout = val(this.keyboard, 'layout');
    const config: NodeConfig = {
      ...(hostname ? { hostname } : {}),
      ...(layout && layout !== this.imageKeyboard ? { keyboard: layout } : {}),
      storage: {
        init: { hostVG: this.hostVGDisks().map((d) => ({ path: d.path })) },
        volumes: {
          efi: DEFAULT_SIZES.efi,
          root: sizes.root ?? DEFAULT_SIZES.root,
          swap: sizes.swap ?? defaultSwapMiB(this.facts.ramMiB),
          config: sizes.config ?? DEFAULT_SIZES.config,
          logging: sizes.logging ?? DEFAULT_SIZES.logging,
          data: sizes.data ?? DEFAULT_SIZES.data,
        },
      },
      boot: { action: this.action === 'reinstall' ? 'reinstall' : 'install' },
      ...(pw ? { security: { adminPasswordHash: sha512Crypt(pw, salt) } } : {}),
    };
    const report = validateNodeConfig(config);
    if (report.hasErrors)
      throw new Error(
        `the installer made an invalid NodeConfig: ${report.errors.map((e) => e.message).join('; ')}`,
      );
    return config;
  }

  /** The screens in order for the chosen action (an upgrade asks nothing about disks). */
  pages(): Page[] {
    if (this.action === 'upgrade') return [this.welcome, this.keyboard, this.confirm];
    return [
      this.welcome,
      this.keyboard,
      this.bootDevice,
      this.hostVG,
      this.sizes,
      this.password,
      this.confirm,
    ];
  }

  /**
   * Puts a refusal of autoinstall's plan (made from this installer's NodeConfig) on the screen
   * where the choice it is about was made: sizes that do not fit on Storage sizes, a disk
   * (boot medium, data, volume groups, a missing disk) on Boot device or HostVG disks, what the
   * image cannot take (account, hostname) on Console password. Returns that page.
   */
  placeRefusal(err: unknown): Page {
    const lines = errorLines(err);
    const all = lines.join('\n');
    const pages = this.pages();
    let where: Page;
    let target: string;
    if (/lay out the disks|layout does not fit|EFI cannot be 0|storage_vol/i.test(all)) {
      [where, target] = [this.sizes, 'data'];
    } else if (/storage_init|holds|medium|no such disk|volume group|partition of/i.test(all)) {
      const boot = this.bootDisk()?.path;
      const others = this.hostVGDisks()
        .slice(1)
        .map((d) => d.path);
      const named = (p: string) => new RegExp(`${p.replace(/[/]/g, '\\/')}\\b`).test(all);
      [where, target] =
        boot && !named(boot) && others.some(named) ? [this.hostVG, 'disks'] : [this.bootDevice, 'disk'];
    } else if (pages.includes(this.password)) {
      [where, target] = [this.password, /hostname/i.test(all) ? 'hostname' : 'password'];
    } else {
      [where, target] = [this.welcome, 'action'];
    }
    if (!pages.includes(where)) [where, target] = [this.welcome, 'action'];
    clearErrors(where);
    where.output = lines;
    const f = where.fields.find((x) => x.id === target);
    if (f) f.error = 'refused by the install plan (see below)';
    return where;
  }

  /** Runs the check of a page; true when it may be left forward. */
  check(page: Page): boolean {
    switch (page.id) {
      case 'welcome':
        return this.checkWelcome();
      case 'boot':
        return this.checkBootDevice();
      case 'hostvg':
        return this.checkHostVG();
      case 'sizes':
        return this.checkSizes();
      case 'password':
        return this.checkPasswordPage();
      default:
        return true;
    }
  }
}

export type { Field };
