// The kernel command line ⇄ NodeConfig, with oVirt Node's argument names and syntax (see
// formatCmdline for the canonical form of each setting, and ARGUMENTS for every spelling read).
//
// This is the one reader of the kernel command line: every part of the runtime that looks at it
// (autoinstall, persist's `stateless`, the ready line's boot mode and selftest, upgrade's running
// slot, the boot medium's root=) takes a CmdlineResult from parseCmdline, through one tokenizer
// (the kernel's) and one table of the arguments hvnode reads (ARGUMENTS for NodeConfig,
// KERNEL_ARGUMENTS for the boot's own).
//
// parseCmdline never throws: an unknown argument is kept for the installed bootloader and
// listed in `unknown`; a malformed value of a known argument is a Diagnostic in `errors` whose
// `arg` is the argument as written (its place on the line) and whose message says what is
// expected, and the rest of the line is still read. Rules that span arguments (a VLAN on a bond
// slave, netmask= without ip=) are checked at the end, against the argument they blame. When
// an argument is given twice, the later one wins (as oVirt's shell loop did).
//
// Kernel-internal arguments a boot naturally carries (ro, rd.*, BOOT_IMAGE=, initrd=, quiet, …)
// are not NodeConfig: like any other unclaimed argument they go to `unknown` and
// `config.bootloaderArgs`; the step that writes the installed bootloader picks what it keeps.

import { readFileSync } from 'node:fs';
import { type Diagnostic, ExitCode, HvError } from '../../common/index.ts';
import { networkdBond, vlanOnBondSlave } from './rules.ts';
import {
  type BootAction,
  type BootInterface,
  type ClaimedArg,
  type DiskBus,
  type DiskSelector,
  type Endpoint,
  type IpConfig,
  type Ipv6Config,
  LOGROTATE_MAX_KB,
  type NodeConfig,
  type ValuePatternName,
  type VolumeName,
  type VolumeSizes,
  validateNodeConfig,
  valuePattern,
} from './schema.ts';

/** One argument as the kernel reads it: `raw` as written, `key` and `value` with quotes removed. */
export interface CmdlineArg {
  raw: string;
  key: string;
  /** Absent for a bare flag (`quiet`); empty for `key=`. */
  value?: string;
}

/** The running slot of an installed node (GRUB's entries say hvnode.slot=Root|RootBackup). */
export type BootSlot = 'Root' | 'RootBackup';

/** What the boot itself says (not configuration): read by ready, upgrade and the disk finder. */
export interface KernelArgs {
  /** `root=` as given: `live:CDLABEL=…`, `live:/name.iso`, `live:http://…`, `/dev/…`, `UUID=…`. */
  root?: string;
  /** `hvnode.slot=`: set on an installed node's GRUB entries. */
  slot?: BootSlot;
  /** `hvnode.esp=`: the installed node's EFI system partition (its vfat UUID). */
  esp?: string;
  /** `hvnode.selftest`: the boot tests ask for the selftest line. */
  selftest?: boolean;
}

export interface CmdlineResult {
  config: NodeConfig;
  kernel: KernelArgs;
  /** Arguments hvnode doesn't know, as written (they are in config.bootloaderArgs too). */
  unknown: string[];
  /** Errors, each with `arg`: the argument as written (a password is not shown). */
  errors: Diagnostic[];
}

// ---------------------------------------------------------------------------------------------
// Splitting, as the kernel's next_arg() does it.

/** The kernel's isspace() on the command line (ASCII). */
function isSpace(code: number): boolean {
  return code === 0x20 || (code >= 0x09 && code <= 0x0d);
}

/**
 * Splits a command line into arguments the way the kernel does: whitespace separates them; a
 * double quote, wherever it is, groups up to the next one; there are no backslash escapes. The
 * quotes around a value (`foo="a b"`) or around a whole argument (`"foo=a b"`) are removed,
 * others stay. An unterminated quote runs to the end of the line; it is closed in `raw` (and the
 * trailing whitespace it swallowed, such as /proc/cmdline's final newline, is dropped) so that
 * every `raw` can be written back into a command line on its own.
 */
export function splitCmdline(s: string): CmdlineArg[] {
  const text = typeof s === 'string' ? s : String(s ?? '');
  const args: CmdlineArg[] = [];
  let i = 0;
  while (i < text.length) {
    if (isSpace(text.charCodeAt(i))) {
      i++;
      continue;
    }
    const start = i;
    let inQuote = false;
    for (; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (!inQuote && isSpace(c)) break;
      if (c === 0x22) inQuote = !inQuote;
    }
    let raw = text.slice(start, i);
    if (inQuote) {
      let end = raw.length;
      while (end > 0 && isSpace(raw.charCodeAt(end - 1))) end--;
      raw = `${raw.slice(0, end)}"`;
    }
    args.push({ raw, ...keyAndValue(raw) });
  }
  return args;
}

/** The kernel's reading of one argument: key up to the first `=`, value with its quotes stripped. */
function keyAndValue(raw: string): { key: string; value?: string } {
  const quoted = raw.startsWith('"');
  const t = quoted ? raw.slice(1) : raw;
  // an `=` in the first position doesn't count (the kernel's `equals == 0` means "none yet")
  const eq = t.indexOf('=', 1);
  if (eq < 0) return { key: quoted && t.endsWith('"') ? t.slice(0, -1) : t };
  const key = t.slice(0, eq);
  let value = t.slice(eq + 1);
  if (value.startsWith('"')) {
    value = value.slice(1);
    if (t.endsWith('"')) value = value.slice(0, -1);
  } else if (quoted && t.endsWith('"')) {
    value = value.slice(0, -1);
  }
  return { key, value };
}

// ---------------------------------------------------------------------------------------------
// Reading values.

const BUSES: readonly DiskBus[] = ['ata', 'scsi', 'usb', 'cciss'];
/** storage_vol's positions (BOOT:SWAP:ROOT:CONFIG:LOGGING:DATA:SWAP2:DATA2); EFI only by name. */
const VOLUME_POSITIONS: readonly VolumeName[] = [
  'boot',
  'swap',
  'root',
  'config',
  'logging',
  'data',
  'swap2',
  'data2',
];
const VOLUME_NAMES: Record<VolumeName, string> = {
  efi: 'EFI',
  boot: 'Boot',
  swap: 'Swap',
  root: 'Root',
  config: 'Config',
  logging: 'Logging',
  data: 'Data',
  swap2: 'Swap2',
  data2: 'Data2',
};
const MAX_MB = 2 ** 31 - 1;
const DEFAULT_SWAP_CIPHER = 'aes-cbc-essiv:sha256';

/** Control characters escaped, so that a garbled command line can't drive a terminal. */
function printable(s: string): string {
  return s.replace(
    /[\u0000-\u001f\u007f-\u009f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

/** A value as it may appear in a message: printable, long ones shortened. */
function show(value: string): string {
  return printable(value.length > 80 ? `${value.slice(0, 77)}...` : value);
}

function isHost(v: string): boolean {
  return v.length <= 253 && valuePattern('host').test(v);
}

/** `host`, `host:port`, `[ipv6]`, `[ipv6]:port`, or a bare IPv6 address (no port). */
function parseEndpoint(v: string): Endpoint | undefined {
  let server: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(v);
  if (bracketed) {
    server = bracketed[1] ?? '';
    portText = bracketed[2];
    if (!valuePattern('ipv6').test(server)) return undefined;
  } else if (v.startsWith('[')) {
    return undefined;
  } else {
    const colons = v.split(':').length - 1;
    if (colons === 1) [server = '', portText] = v.split(':');
    else server = v;
  }
  if (!isHost(server)) return undefined;
  if (portText === undefined) return { server };
  const port = parsePort(portText);
  return port === undefined ? undefined : { server, port };
}

function parsePort(v: string): number | undefined {
  if (!/^[1-9]\d{0,4}$/.test(v)) return undefined;
  const n = Number(v);
  return n <= 65535 ? n : undefined;
}

function formatEndpoint(e: Endpoint): string {
  const host = valuePattern('ipv6').test(e.server) ? `[${e.server}]` : e.server;
  return e.port === undefined ? host : `${host}:${e.port}`;
}

/** MAC from BOOTIF: `01-aa-bb-cc-dd-ee-ff` (pxelinux IPAPPEND 2: ARP type first), `aa-bb-…`, `aa:bb:…`. */
function parseMac(v: string): string | undefined {
  const m = /^(?:[0-9A-Fa-f]{2}-)?([0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){5})$/.exec(v);
  const mac =
    m?.[1]?.replace(/-/g, ':') ?? (/^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}$/.test(v) ? v : undefined);
  return mac?.toLowerCase();
}

function parseDisk(item: string): Exclude<DiskSelector, { first: true }> | undefined {
  if (item.startsWith('/'))
    return item.length <= 1024 && valuePattern('devicePath').test(item) ? { path: item } : undefined;
  const colon = item.indexOf(':');
  const bus = (colon < 0 ? item : item.slice(0, colon)) as DiskBus;
  if (!BUSES.includes(bus)) return undefined;
  const serial = colon < 0 ? '' : item.slice(colon + 1);
  if (serial === '') return { bus };
  return serial.length <= 255 && valuePattern('diskSerial').test(serial) ? { bus, serial } : undefined;
}

function formatDisk(d: DiskSelector): string {
  if ('path' in d) return d.path;
  if ('bus' in d) return d.serial === undefined ? d.bus : `${d.bus}:${d.serial}`;
  return '';
}

/** Flag values: bare or 1/y/yes/true/on is on, 0/n/no/false/off is off (any case). */
function parseFlag(value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return true;
  const v = value.toLowerCase();
  if (['1', 'y', 'yes', 'true', 'on'].includes(v)) return true;
  if (['0', 'n', 'no', 'false', 'off'].includes(v)) return false;
  return undefined;
}

/** A list of `,`-separated items, every one of which must be valid (empty ones are not). */
function parseList<T>(v: string, item: (s: string) => T | undefined): { items: T[]; bad: string[] } {
  const items: T[] = [];
  const bad: string[] = [];
  for (const s of v.split(',')) {
    const x = s === '' ? undefined : item(s);
    if (x === undefined) bad.push(s);
    else items.push(x);
  }
  return { items, bad };
}

function badItems(bad: string[]): string {
  return bad.map((b) => (b === '' ? 'an empty item' : `"${show(b)}"`)).join(', ');
}

// ---------------------------------------------------------------------------------------------
// Parsing: every argument updates a draft; finish() checks what spans arguments and builds the
// NodeConfig.

/** A setting together with the argument it came from, as written (for errors found later). */
interface From<T> {
  arg: string;
  value: T;
}

interface Draft {
  errors: Diagnostic[];
  unknown: string[];
  bootloaderArgs: string[];
  kernel: KernelArgs;
  hostname?: string;
  keyboard?: string;
  bootif?: BootInterface;
  ip?: IpConfig;
  netmask?: From<string>;
  gateway?: From<string>;
  ipv6?: Ipv6Config;
  ipv6Gateway?: From<string>;
  dns?: string[];
  ntp?: string[];
  vlan?: From<{ id: number; nic?: string }>;
  bond?: { name: string; slaves: string[]; options?: string[] };
  init?: NonNullable<NodeConfig['storage']>['init'];
  volumes: VolumeSizes;
  swapEncrypt: { swap?: string; swap2?: string };
  overcommit?: number;
  wipeFakeraid?: boolean;
  install?: boolean;
  upgrade?: boolean;
  firstboot?: { on: boolean; as: 'firstboot' | 'reinstall' };
  uninstall?: boolean;
  localBoot?: true;
  stateless?: boolean;
  standalone?: boolean;
  rescue?: boolean;
  runtimeMode?: 'ovirt' | 'managed' | 'none';
  adminPasswordHash?: string;
  rootPasswordHash?: string;
  sshPasswordAuth?: boolean;
  syslog?: Endpoint;
  netconsole?: Endpoint;
  logrotateMaxSize?: number;
  collectd?: Endpoint;
  kdump?: { nfs: string } | { ssh: string };
  iscsiName?: string;
  iscsiTarget: { server?: string; port?: number; name?: string };
  iscsiInstall?: boolean;
  iscsiInitDisk?: string;
  engineServer?: string;
  enginePort?: From<number>;
  engineFingerprint?: From<string>;
  configUrl?: string;
  configKey?: string;
  localBootTrigger?: string;
}

/** The argument being read, and how to report a problem with it. */
class Arg {
  constructor(
    readonly name: ClaimedArg | KernelArgName,
    readonly value: string | undefined,
    private readonly draft: Draft,
  ) {}

  /** The argument as a message may show it: `name`, `name=value` (printable, shortened). */
  get shown(): string {
    return this.value === undefined ? this.name : `${this.name}=${show(this.value)}`;
  }

  /** `expected …`, at this argument. */
  expected(form: string, opts: { hideValue?: boolean; hint?: string } = {}): void {
    this.problem(`expected ${form}`, opts);
  }

  problem(message: string, opts: { hideValue?: boolean; hint?: string } = {}): void {
    const arg = opts.hideValue && this.value !== undefined ? `${this.name}=(not shown)` : this.shown;
    this.draft.errors.push({ severity: 'error', arg, message, ...(opts.hint ? { hint: opts.hint } : {}) });
  }

  /** The value when it is there and non-empty; otherwise reports `form` as expected. */
  required(form: string): string | undefined {
    if (this.value === undefined || this.value === '') {
      this.expected(form);
      return undefined;
    }
    return this.value;
  }

  flag(set: (on: boolean) => void): void {
    const on = parseFlag(this.value);
    if (on === undefined)
      this.expected(`${this.name} (or ${this.name}=1) to turn it on, ${this.name}=0 to turn it off`);
    else set(on);
  }

  /** Reads a value that must match one of the schema's value patterns. */
  matching(form: string, name: ValuePatternName, maxLength: number, set: (v: string) => void): void {
    const v = this.required(form);
    if (v === undefined) return;
    if (v.length <= maxLength && valuePattern(name).test(v)) set(v);
    else this.expected(form);
  }

  endpoint(set: (e: Endpoint) => void): void {
    const v = this.required('SERVER[:PORT] (a host name or IP address; [IPv6]:PORT)');
    if (v === undefined) return;
    const e = parseEndpoint(v);
    if (e) set(e);
    else this.expected('SERVER[:PORT] (a host name or IP address, port 1-65535; [IPv6]:PORT)');
  }
}

type Handler = (a: Arg, d: Draft) => void;

const storageInit: Handler = (a, d) => {
  const form =
    '/dev/PATH or ata|scsi|usb|cciss[:SERIAL|:ALL], separated by ",", HostVG;AppVG disks split by ";"';
  if (a.value === undefined || a.value === '') {
    d.init = { hostVG: [{ first: true }] };
    return;
  }
  const [hostPart = '', appPart = '', ...more] = a.value.split(';');
  if (more.length > 0) return a.expected(`at most one ";" (HostVG disks;AppVG disks): ${form}`);
  const host =
    hostPart === '' ? { items: [{ first: true } as const], bad: [] } : parseList(hostPart, parseDisk);
  const app = appPart === '' ? undefined : parseList(appPart, parseDisk);
  const bad = [...host.bad, ...(app?.bad ?? [])];
  if (bad.length > 0) return a.problem(`${badItems(bad)} is not a disk: expected ${form}`);
  d.init = app ? { hostVG: host.items, appVG: app.items } : { hostVG: host.items };
};

const storageVol: Handler = (a, d) => {
  const form = 'BOOT:SWAP:ROOT:CONFIG:LOGGING:DATA:SWAP2:DATA2 in MB, or SIZE,Name items joined by ":"';
  const v = a.required(form);
  if (v === undefined) return;
  const sizes: VolumeSizes = {};
  const problems: string[] = [];
  v.split(':').forEach((field, i) => {
    if (field === '') return;
    const [sizeText = '', name, ...extra] = field.split(',');
    let volume: VolumeName | undefined;
    if (extra.length > 0) problems.push(`"${show(field)}" has more than SIZE,Name`);
    else if (name === undefined || name === '') {
      volume = VOLUME_POSITIONS[i];
      if (!volume) problems.push(`"${show(field)}" is item ${i + 1}, past DATA2: name it (SIZE,Name)`);
    } else {
      volume = (Object.keys(VOLUME_NAMES) as VolumeName[]).find((k) => k === name.toLowerCase());
      if (!volume)
        problems.push(`"${show(name)}" is not a volume (${Object.values(VOLUME_NAMES).join(', ')})`);
    }
    if (!volume) return;
    const rest = volume === 'data' || volume === 'data2';
    const n = /^(?:-1|0|[1-9]\d{0,9})$/.test(sizeText) ? Number(sizeText) : Number.NaN;
    if (Number.isNaN(n) || n > MAX_MB || (n < 0 && !rest)) {
      problems.push(
        `"${show(sizeText)}" is not a size for ${VOLUME_NAMES[volume]} (MB, 0 = none${rest ? ', -1 = the rest' : ''})`,
      );
    } else sizes[volume] = n;
  });
  if (problems.length > 0) return a.problem(`${problems.join('; ')}; expected ${form}`);
  d.volumes = { ...d.volumes, ...sizes };
};

const swapEncrypt: Handler = (a, d) => {
  const form = `Swap[,CIPHER][;Swap2[,CIPHER]] (default cipher ${DEFAULT_SWAP_CIPHER})`;
  const v = a.required(form);
  if (v === undefined) return;
  const items = v.split(';');
  const set: { swap?: string; swap2?: string } = {};
  for (const item of items) {
    const comma = item.indexOf(',');
    const name = (comma < 0 ? item : item.slice(0, comma)).toLowerCase();
    const cipher = comma < 0 ? DEFAULT_SWAP_CIPHER : item.slice(comma + 1);
    if (items.length > 2 || (name !== 'swap' && name !== 'swap2') || !valuePattern('cipher').test(cipher)) {
      return a.expected(form);
    }
    set[name] = cipher;
  }
  d.swapEncrypt = { ...d.swapEncrypt, ...set };
};

const overcommit: Handler = (a, d) => {
  const v = a.required('a ratio from 0 to 100, e.g. 0.5');
  if (v === undefined) return;
  const n = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/.test(v) ? Number(v) : Number.NaN;
  if (Number.isFinite(n) && n >= 0 && n <= 100) d.overcommit = n;
  else a.expected('a ratio from 0 to 100, e.g. 0.5');
};

const upgrade: Handler = (a, d) =>
  a.flag((on) => {
    d.upgrade = on;
  });

const localBoot: Handler = (a, d) =>
  a.flag((on) => {
    d.upgrade = on;
    d.localBoot = on ? true : undefined;
  });

const firstboot =
  (as: 'firstboot' | 'reinstall'): Handler =>
  (a, d) =>
    a.flag((on) => {
      d.firstboot = { on, as };
    });

const password =
  (key: 'adminPasswordHash' | 'rootPasswordHash'): Handler =>
  (a, d) => {
    const form = 'a crypt(3) hash such as $6$SALT$HASH (openssl passwd -6); a plain password is refused';
    if (a.value === undefined || a.value === '') return a.expected(form);
    if (a.value.length <= 1024 && valuePattern('cryptHash').test(a.value)) d[key] = a.value;
    else a.expected(form, { hideValue: true });
  };

const ip: Handler = (a, d) => {
  const form = 'dhcp, off, ADDRESS (with netmask= and gateway=) or CLIENT:SERVER:GATEWAY:NETMASK';
  const v = a.required(form);
  if (v === undefined) return;
  const ipv4 = valuePattern('ipv4');
  if (v === 'dhcp' || v === 'off') d.ip = { mode: v };
  else if (ipv4.test(v)) d.ip = { mode: 'static', address: v };
  else {
    // pxelinux IPAPPEND 1: client:boot-server:gateway:netmask (the boot server is of no use here)
    const fields = v.split(':');
    const [client = '', server = '', gw = '', mask = ''] = fields;
    const ok =
      fields.length === 4 &&
      ipv4.test(client) &&
      (server === '' || ipv4.test(server)) &&
      (gw === '' || ipv4.test(gw)) &&
      (mask === '' || valuePattern('netmask').test(mask));
    if (!ok) return a.expected(form);
    d.ip = {
      mode: 'static',
      address: client,
      ...(mask ? { netmask: mask } : {}),
      ...(gw ? { gateway: gw } : {}),
    };
  }
};

const ipv6: Handler = (a, d) => {
  const form = 'auto, dhcp or ADDRESS[/PREFIX] (IPv6, prefix 1-128)';
  const v = a.required(form);
  if (v === undefined) return;
  if (v === 'auto' || v === 'dhcp') {
    d.ipv6 = { mode: v };
    return;
  }
  const [address = '', prefixText, ...more] = v.split('/');
  const prefix =
    prefixText === undefined
      ? undefined
      : /^(?:[1-9]\d?|1[01]\d|12[0-8])$/.test(prefixText)
        ? Number(prefixText)
        : -1;
  if (more.length > 0 || prefix === -1 || !valuePattern('ipv6').test(address)) return a.expected(form);
  d.ipv6 = prefix === undefined ? { mode: 'static', address } : { mode: 'static', address, prefix };
};

const vlan: Handler = (a, d) => {
  const form = 'a VLAN id 1-4094, optionally :NIC (vlan=ID[:NIC])';
  const v = a.required(form);
  if (v === undefined) return;
  const [idText = '', nic, ...more] = v.split(':');
  const id = /^[1-9]\d{0,3}$/.test(idText) ? Number(idText) : 0;
  if (more.length > 0 || id < 1 || id > 4094 || (nic !== undefined && !valuePattern('nic').test(nic))) {
    return a.expected(form);
  }
  d.vlan = { arg: a.shown, value: nic === undefined ? { id } : { id, nic } };
};

const bond: Handler = (a, d) => {
  const form = 'NAME:NIC,NIC[:OPTION=VALUE,…] (e.g. bond0:eth0,eth1:mode=802.3ad,miimon=100)';
  const v = a.required(form);
  if (v === undefined) return;
  const [name = '', slaveText = '', ...rest] = v.split(':');
  // options may hold ":" themselves (IPv6 targets), so they are the rest of the value
  const optionText = rest.join(':');
  const slaves = parseList(slaveText, (s) => (valuePattern('nic').test(s) ? s : undefined));
  const options =
    optionText === ''
      ? undefined
      : parseList(optionText, (s) => (valuePattern('bondOption').test(s) ? s : undefined));
  if (
    !valuePattern('nic').test(name) ||
    slaves.bad.length > 0 ||
    (options?.bad.length ?? 0) > 0 ||
    (rest.length > 0 && !options)
  ) {
    return a.expected(form);
  }
  const value = options
    ? { name, slaves: slaves.items, options: options.items }
    : { name, slaves: slaves.items };
  // the options as the bonding driver (and networkd) takes them: checked now, not at install time
  const { problems } = networkdBond(value);
  if (problems.length > 0) {
    const hints = [...new Set(problems.map((p) => p.hint))];
    return a.problem(problems.map((p) => `${p.option}: ${p.message}`).join('; '), { hint: hints.join('; ') });
  }
  d.bond = value;
};

const configServer: Handler = (a, d) => {
  const form = 'an http(s) URL or HOST[:PORT] (https is assumed)';
  const v = a.required(form);
  if (v === undefined) return;
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(v)) {
    if (v.length <= 2048 && valuePattern('url').test(v)) d.configUrl = v;
    else a.expected(form);
    return;
  }
  const e = parseEndpoint(v);
  if (e) d.configUrl = `https://${formatEndpoint(e)}`;
  else a.expected(form);
};

const managementServer: Handler = (a, d) =>
  a.endpoint((e) => {
    d.engineServer = e.server;
    if (e.port !== undefined) d.enginePort = { arg: a.shown, value: e.port };
  });

/** Every argument NodeConfig claims, by every spelling oVirt Node accepted. */
export const ARGUMENTS: Record<ClaimedArg, Handler> = {
  BOOTIF: (a, d) => {
    const form = 'a MAC as pxelinux gives it (01-aa-bb-cc-dd-ee-ff), a NIC name (eth0) or "link"';
    const v = a.required(form);
    if (v === undefined) return;
    const mac = parseMac(v);
    if (v === 'link') d.bootif = { link: true };
    else if (mac) d.bootif = { mac };
    else if (valuePattern('nic').test(v)) d.bootif = { nic: v };
    else a.expected(form);
  },
  storage_init: storageInit,
  ovirt_init: storageInit,
  storage_vol: storageVol,
  ovirt_vol: storageVol,
  swap_encrypt: swapEncrypt,
  ovirt_swap_encrypt: swapEncrypt,
  mem_overcommit: overcommit,
  ovirt_overcommit: overcommit,
  wipe_fakeraid: (a, d) =>
    a.flag((on) => {
      d.wipeFakeraid = on;
    }),
  install: (a, d) =>
    a.flag((on) => {
      d.install = on;
    }),
  upgrade,
  ovirt_upgrade: upgrade,
  local_boot: localBoot,
  ovirt_local_boot: localBoot,
  firstboot: firstboot('firstboot'),
  ovirt_firstboot: firstboot('firstboot'),
  reinstall: firstboot('reinstall'),
  uninstall: (a, d) =>
    a.flag((on) => {
      d.uninstall = on;
    }),
  stateless: (a, d) =>
    a.flag((on) => {
      d.stateless = on;
    }),
  ovirt_stateless: (a, d) =>
    a.flag((on) => {
      d.stateless = on;
    }),
  standalone: (a, d) =>
    a.flag((on) => {
      d.standalone = on;
    }),
  ovirt_standalone: (a, d) =>
    a.flag((on) => {
      d.standalone = on;
    }),
  runtime_mode: (a, d) => {
    const v = a.value;
    if (v === 'ovirt' || v === 'managed' || v === 'none') d.runtimeMode = v;
    else a.expected('ovirt, managed or none');
  },
  rescue: (a, d) =>
    a.flag((on) => {
      d.rescue = on;
    }),
  adminpw: password('adminPasswordHash'),
  rootpw: password('rootPasswordHash'),
  ssh_pwauth: (a, d) =>
    a.flag((on) => {
      d.sshPasswordAuth = on;
    }),
  hostname: (a, d) =>
    a.matching('a host name (RFC 1123, e.g. node1.example.com)', 'hostname', 253, (v) => {
      d.hostname = v;
    }),
  keyboard: (a, d) =>
    a.matching(
      'a keyboard layout as XKB names it, optionally -VARIANT (e.g. us, de, de-nodeadkeys)',
      'keyboard',
      41,
      (v) => {
        d.keyboard = v;
      },
    ),
  ip,
  netmask: (a, d) =>
    a.matching('a dotted IPv4 netmask, e.g. 255.255.255.0', 'netmask', 15, (value) => {
      d.netmask = { arg: a.shown, value };
    }),
  gateway: (a, d) =>
    a.matching('an IPv4 address', 'ipv4', 15, (value) => {
      d.gateway = { arg: a.shown, value };
    }),
  ipv6,
  ipv6_gateway: (a, d) =>
    a.matching('an IPv6 address', 'ipv6', 45, (value) => {
      d.ipv6Gateway = { arg: a.shown, value };
    }),
  dns: (a, d) => {
    const v = a.required('IP addresses separated by ","');
    if (v === undefined) return;
    const { items, bad } = parseList(v, (s) => (valuePattern('ipAddress').test(s) ? s : undefined));
    if (bad.length > 0)
      a.problem(`${badItems(bad)} is not an IP address: expected IP addresses separated by ","`);
    else d.dns = items;
  },
  ntp: (a, d) => {
    const v = a.required('servers separated by ","');
    if (v === undefined) return;
    const { items, bad } = parseList(v, (s) => (isHost(s) ? s : undefined));
    if (bad.length > 0)
      a.problem(`${badItems(bad)} is not a host: expected host names or IP addresses separated by ","`);
    else d.ntp = items;
  },
  vlan,
  bond,
  bond_setup: bond,
  syslog: (a, d) =>
    a.endpoint((e) => {
      d.syslog = e;
    }),
  netconsole: (a, d) =>
    a.endpoint((e) => {
      // the kernel's netconsole does no name lookup
      if (valuePattern('ipAddress').test(e.server)) d.netconsole = e;
      else
        a.problem('expected ADDRESS[:PORT]: netconsole needs the IP address of the log server, not a name', {
          hint: 'give netconsole=ADDRESS[:PORT] ([IPv6]:PORT)',
        });
    }),
  logrotate_max_size: (a, d) => {
    const form = `a size in KB from 1 to ${LOGROTATE_MAX_KB} (1 GiB), e.g. 1024`;
    const v = a.required(form);
    if (v === undefined) return;
    const kb = /^[1-9]\d{0,6}$/.test(v) ? Number(v) : 0;
    if (kb >= 1 && kb <= LOGROTATE_MAX_KB) d.logrotateMaxSize = kb;
    else a.expected(form);
  },
  collectd: (a, d) =>
    a.endpoint((e) => {
      d.collectd = e;
    }),
  kdump_nfs: (a, d) =>
    a.matching('HOST:/PATH', 'nfsTarget', 1024, (nfs) => {
      d.kdump = { nfs };
    }),
  kdump_ssh: (a, d) =>
    a.matching('USER@HOST', 'sshTarget', 255, (ssh) => {
      d.kdump = { ssh };
    }),
  iscsi_name: (a, d) =>
    a.matching('an iSCSI name (iqn.YYYY-MM.domain[:id], eui.…, naa.…)', 'iscsiName', 223, (v) => {
      d.iscsiName = v;
    }),
  iscsi_init: (a, d) =>
    a.matching('a device path /dev/…', 'devicePath', 1024, (v) => {
      d.iscsiInitDisk = v;
    }),
  iscsi_server: (a, d) =>
    a.endpoint((e) => {
      d.iscsiTarget = { ...d.iscsiTarget, server: e.server, port: e.port };
    }),
  iscsi_target_name: (a, d) =>
    a.matching('an iSCSI name (iqn.YYYY-MM.domain[:id], eui.…, naa.…)', 'iscsiName', 223, (name) => {
      d.iscsiTarget = { ...d.iscsiTarget, name };
    }),
  iscsi_install: (a, d) =>
    a.flag((on) => {
      d.iscsiInstall = on;
    }),
  management_server: managementServer,
  managment_server: managementServer,
  ovirt_managment_server: managementServer,
  management_port: (a, d) => {
    const port = parsePort(a.value ?? '');
    if (port === undefined) a.expected('a port 1-65535');
    else d.enginePort = { arg: a.shown, value: port };
  },
  management_server_fingerprint: (a, d) =>
    a.matching(
      "the engine CA's SHA-1 or SHA-256 fingerprint as colon-separated hex (AB:CD:…)",
      'fingerprint',
      95,
      (value) => {
        d.engineFingerprint = { arg: a.shown, value };
      },
    ),
  config_server: configServer,
  config_key: (a, d) =>
    a.matching(
      'an Ed25519 public key in base64 (44 characters) or sha256:HEX (64 digits)',
      'bundleKey',
      71,
      (v) => {
        d.configKey = v;
      },
    ),
  local_boot_trigger: (a, d) =>
    a.matching('an http(s) URL (@HOSTNAME@ is replaced)', 'url', 2048, (v) => {
      d.localBootTrigger = v;
    }),
};

export type KernelArgName =
  | 'root'
  | 'hvnode.slot'
  | 'hvnode.esp'
  | 'hvnode.selftest'
  | 'crashkernel'
  | 'console';

/**
 * The boot's own arguments that hvnode reads or expects (not NodeConfig): they are kept, as
 * written, in bootloaderArgs (the installed bootloader drops the live boot's root= and
 * hvnode.slot=/hvnode.esp=: see install/bootloader.ts) and are not reported as unknown.
 */
export const KERNEL_ARGUMENTS: Record<KernelArgName, Handler> = {
  root: (a, d) => {
    d.kernel.root = a.value || undefined;
  },
  'hvnode.slot': (a, d) => {
    if (a.value === 'Root' || a.value === 'RootBackup') d.kernel.slot = a.value;
    else a.expected("Root or RootBackup (set by the installed node's GRUB entries)");
  },
  'hvnode.esp': (a, d) => {
    if (a.value && /^[0-9A-Fa-f]+(?:-[0-9A-Fa-f]+)*$/.test(a.value)) d.kernel.esp = a.value;
    else a.expected("the EFI system partition's file system UUID, e.g. ABCD-1234");
  },
  'hvnode.selftest': (a, d) =>
    a.flag((on) => {
      d.kernel.selftest = on;
    }),
  // oVirt kept them for the installed bootloader, and so do we
  crashkernel: () => {},
  console: () => {},
};

function isClaimed(key: string): key is ClaimedArg {
  return Object.hasOwn(ARGUMENTS, key);
}

function isKernelArg(key: string): key is KernelArgName {
  return Object.hasOwn(KERNEL_ARGUMENTS, key);
}

/** Reads a kernel command line into a NodeConfig. Never throws. */
export function parseCmdline(cmdline: string): CmdlineResult {
  const d: Draft = {
    errors: [],
    unknown: [],
    bootloaderArgs: [],
    kernel: {},
    volumes: {},
    swapEncrypt: {},
    iscsiTarget: {},
  };
  for (const { raw, key, value } of splitCmdline(cmdline)) {
    if (isClaimed(key)) {
      ARGUMENTS[key](new Arg(key, value, d), d);
      continue;
    }
    d.bootloaderArgs.push(raw);
    if (isKernelArg(key)) KERNEL_ARGUMENTS[key](new Arg(key, value, d), d);
    else d.unknown.push(raw);
  }
  const config = finish(d);
  return { config, kernel: d.kernel, unknown: d.unknown, errors: d.errors };
}

/** A command line given as text is read here; a result already read is taken as it is. */
export function readCmdline(cmdline: string | CmdlineResult): CmdlineResult {
  return typeof cmdline === 'string' ? parseCmdline(cmdline) : cmdline;
}

/** The errors of the named arguments (whatever their value). */
export function argErrors(result: CmdlineResult, names: readonly string[]): Diagnostic[] {
  return result.errors.filter((e) => names.some((n) => e.arg === n || e.arg?.startsWith(`${n}=`)));
}

/**
 * Throws (exit 65, every error listed with its argument) when the command line has errors; only
 * those of `names` when given, so that a command is not stopped by arguments it does not read.
 */
export function requireValidArgs(
  result: CmdlineResult,
  { where, names }: { where?: string; names?: readonly string[] } = {},
): void {
  const errors = names ? argErrors(result, names) : result.errors;
  if (errors.length === 0) return;
  throw new HvError(
    `the kernel command line has ${errors.length === 1 ? 'a malformed argument' : 'malformed arguments'}`,
    {
      where,
      exitCode: ExitCode.dataError,
      diagnostics: errors,
    },
  );
}

/** The kernel command line from a file (default /proc/cmdline), read; exit 2 when it can't be. */
/** The running kernel's command line file: /proc/cmdline, or HVNODE_CMDLINE (tests). */
export function kernelCmdlineFile(env: NodeJS.ProcessEnv = process.env): string {
  return env.HVNODE_CMDLINE || '/proc/cmdline';
}

export function readKernelCmdline(file = '/proc/cmdline', where?: string): CmdlineResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new HvError(`cannot read ${file}: ${(err as Error).message}`, {
      where,
      exitCode: ExitCode.precondition,
      hint: file === '/proc/cmdline' ? 'give the command line with --cmdline STRING' : undefined,
    });
  }
  return parseCmdline(text);
}

/** A command's `--cmdline STRING` when given, else the running kernel's command line. */
export function cmdlineFromOption(given: unknown, where?: string): CmdlineResult {
  return typeof given === 'string' ? parseCmdline(given) : readKernelCmdline('/proc/cmdline', where);
}

/** oVirt's flags combined into one action; the more destructive one wins when several are given. */
function bootAction(d: Draft): BootAction | undefined {
  if (d.uninstall) return 'uninstall';
  if (d.firstboot?.on) return d.firstboot.as;
  if (d.upgrade) return 'upgrade';
  if (d.install) return 'install';
  if (d.uninstall === false || d.firstboot?.on === false || d.upgrade === false || d.install === false)
    return 'none';
  return undefined;
}

/** Drops undefined values; undefined when nothing is left (NodeConfig has no empty sections). */
function compact<T extends object>(o: T): T | undefined {
  const entries = Object.entries(o).filter(([, v]) => v !== undefined);
  return entries.length > 0 ? (Object.fromEntries(entries) as T) : undefined;
}

function nonEmpty<T extends object>(o: T): T | undefined {
  return Object.keys(o).length > 0 ? o : undefined;
}

function finish(d: Draft): NodeConfig {
  const needs = (what: From<unknown> | undefined, message: string) => {
    if (what) d.errors.push({ severity: 'error', arg: what.arg, message });
  };
  let vlanConfig = d.vlan?.value;
  const onSlave = vlanOnBondSlave({ vlan: vlanConfig, bond: d.bond });
  if (d.vlan && onSlave) {
    d.errors.push({ severity: 'error', arg: d.vlan.arg, message: onSlave.message, hint: onSlave.hint });
    vlanConfig = undefined;
  }

  let ipConfig = d.ip;
  if (ipConfig?.mode === 'static') {
    // the pxelinux form's own netmask and gateway come first, as in oVirt
    ipConfig = compact({
      ...ipConfig,
      netmask: ipConfig.netmask ?? d.netmask?.value,
      gateway: ipConfig.gateway ?? d.gateway?.value,
    });
  } else {
    needs(d.netmask, 'needs a static address (ip=ADDRESS)');
    needs(d.gateway, 'needs a static address (ip=ADDRESS)');
  }
  let ipv6Config = d.ipv6;
  if (ipv6Config?.mode === 'static' && d.ipv6Gateway)
    ipv6Config = { ...ipv6Config, gateway: d.ipv6Gateway.value };
  else if (ipv6Config?.mode !== 'static')
    needs(d.ipv6Gateway, 'needs a static IPv6 address (ipv6=ADDRESS[/PREFIX])');

  let engine: NodeConfig['engine'];
  if (d.engineServer !== undefined) {
    engine = compact({
      server: d.engineServer,
      port: d.enginePort?.value,
      fingerprint: d.engineFingerprint?.value,
    });
  } else {
    needs(d.enginePort, 'needs management_server=HOST');
    needs(d.engineFingerprint, 'needs management_server=HOST');
  }

  const config: NodeConfig = {
    hostname: d.hostname,
    keyboard: d.keyboard,
    network: compact({
      bootif: d.bootif,
      ip: ipConfig,
      ipv6: ipv6Config,
      dns: d.dns,
      ntp: d.ntp,
      vlan: vlanConfig,
      bond: d.bond,
    }),
    storage: compact({
      init: d.init,
      volumes: nonEmpty(d.volumes),
      swapEncrypt: nonEmpty(d.swapEncrypt),
      overcommit: d.overcommit,
      wipeFakeraid: d.wipeFakeraid,
    }),
    boot: compact({
      action: bootAction(d),
      localBoot: d.localBoot,
      stateless: d.stateless,
      standalone: d.standalone,
      rescue: d.rescue,
      runtimeMode: d.runtimeMode,
    }),
    security: compact({
      adminPasswordHash: d.adminPasswordHash,
      rootPasswordHash: d.rootPasswordHash,
      sshPasswordAuth: d.sshPasswordAuth,
    }),
    logging: compact({
      syslog: d.syslog,
      netconsole: d.netconsole,
      logrotateMaxSize: d.logrotateMaxSize,
    }),
    kdump: d.kdump,
    monitoring: compact({ collectd: d.collectd }),
    iscsi: compact({
      initiatorName: d.iscsiName,
      target: compact(d.iscsiTarget),
      install: d.iscsiInstall,
      initDisk: d.iscsiInitDisk,
    }),
    engine,
    configServer: compact({ url: d.configUrl, key: d.configKey }),
    localBootTrigger: d.localBootTrigger,
    bootloaderArgs: d.bootloaderArgs.length > 0 ? d.bootloaderArgs : undefined,
  };
  return compact(config) ?? {};
}

// ---------------------------------------------------------------------------------------------
// Formatting: NodeConfig → the command line that parseCmdline reads back into the same config.

/**
 * The canonical command line of a NodeConfig (which must be valid: see validateNodeConfig).
 * Every known setting is written with its oVirt name, then bootloaderArgs verbatim, in order.
 */
export function formatCmdline(config: NodeConfig): string {
  const report = validateNodeConfig(config);
  if (report.hasErrors) {
    throw new HvError('not a valid NodeConfig', {
      where: 'formatCmdline',
      exitCode: ExitCode.dataError,
      diagnostics: report.errors,
    });
  }
  const out: string[] = [];
  const arg = (key: ClaimedArg, value?: string | number) =>
    out.push(value === undefined ? key : `${key}=${value}`);
  const flag = (key: ClaimedArg, on: boolean | undefined) => {
    if (on !== undefined) arg(key, on ? undefined : '0');
  };

  const { boot, network: net, storage, security, iscsi, engine } = config;
  if (boot) {
    if (boot.localBoot) arg('local_boot');
    if (boot.action && !(boot.localBoot && boot.action === 'upgrade')) {
      if (boot.action === 'none') arg('firstboot', '0');
      else arg(boot.action);
    }
    flag('stateless', boot.stateless);
    flag('standalone', boot.standalone);
    flag('rescue', boot.rescue);
    if (boot.runtimeMode) arg('runtime_mode', boot.runtimeMode);
  }
  if (config.hostname) arg('hostname', config.hostname);
  if (config.keyboard) arg('keyboard', config.keyboard);
  if (net) {
    const b = net.bootif;
    if (b) arg('BOOTIF', 'mac' in b ? `01-${b.mac.replace(/:/g, '-')}` : 'nic' in b ? b.nic : 'link');
    if (net.ip?.mode === 'static') {
      arg('ip', net.ip.address);
      if (net.ip.netmask) arg('netmask', net.ip.netmask);
      if (net.ip.gateway) arg('gateway', net.ip.gateway);
    } else if (net.ip) arg('ip', net.ip.mode);
    if (net.ipv6?.mode === 'static') {
      arg(
        'ipv6',
        net.ipv6.prefix === undefined ? net.ipv6.address : `${net.ipv6.address}/${net.ipv6.prefix}`,
      );
      if (net.ipv6.gateway) arg('ipv6_gateway', net.ipv6.gateway);
    } else if (net.ipv6) arg('ipv6', net.ipv6.mode);
    if (net.dns) arg('dns', net.dns.join(','));
    if (net.ntp) arg('ntp', net.ntp.join(','));
    if (net.vlan) arg('vlan', net.vlan.nic === undefined ? net.vlan.id : `${net.vlan.id}:${net.vlan.nic}`);
    if (net.bond) {
      const { name, slaves, options } = net.bond;
      arg('bond', [name, slaves.join(','), ...(options ? [options.join(',')] : [])].join(':'));
    }
  }
  if (storage) {
    const { init, volumes, swapEncrypt } = storage;
    if (init) {
      const host = init.hostVG.map(formatDisk).join(',');
      if (init.appVG) arg('storage_init', `${host};${init.appVG.map(formatDisk).join(',')}`);
      else if (host === '') arg('storage_init');
      else arg('storage_init', host);
    }
    if (volumes) {
      const items = (Object.keys(VOLUME_NAMES) as VolumeName[])
        .filter((k) => volumes[k] !== undefined)
        .map((k) => `${volumes[k]},${VOLUME_NAMES[k]}`);
      arg('storage_vol', items.join(':'));
    }
    if (swapEncrypt) {
      const items = [];
      if (swapEncrypt.swap) items.push(`Swap,${swapEncrypt.swap}`);
      if (swapEncrypt.swap2) items.push(`Swap2,${swapEncrypt.swap2}`);
      arg('swap_encrypt', items.join(';'));
    }
    if (storage.overcommit !== undefined) arg('mem_overcommit', String(storage.overcommit));
    flag('wipe_fakeraid', storage.wipeFakeraid);
  }
  if (security) {
    if (security.adminPasswordHash) arg('adminpw', security.adminPasswordHash);
    if (security.rootPasswordHash) arg('rootpw', security.rootPasswordHash);
    if (security.sshPasswordAuth !== undefined) arg('ssh_pwauth', security.sshPasswordAuth ? '1' : '0');
  }
  if (config.logging?.syslog) arg('syslog', formatEndpoint(config.logging.syslog));
  if (config.logging?.netconsole) arg('netconsole', formatEndpoint(config.logging.netconsole));
  if (config.logging?.logrotateMaxSize !== undefined)
    arg('logrotate_max_size', config.logging.logrotateMaxSize);
  if (config.kdump) {
    if ('nfs' in config.kdump) arg('kdump_nfs', config.kdump.nfs);
    else arg('kdump_ssh', config.kdump.ssh);
  }
  if (config.monitoring?.collectd) arg('collectd', formatEndpoint(config.monitoring.collectd));
  if (iscsi) {
    if (iscsi.initiatorName) arg('iscsi_name', iscsi.initiatorName);
    const t = iscsi.target;
    if (t?.server) arg('iscsi_server', formatEndpoint({ server: t.server, port: t.port }));
    if (t?.name) arg('iscsi_target_name', t.name);
    flag('iscsi_install', iscsi.install);
    if (iscsi.initDisk) arg('iscsi_init', iscsi.initDisk);
  }
  if (engine) {
    arg('management_server', formatEndpoint(engine));
    if (engine.fingerprint) arg('management_server_fingerprint', engine.fingerprint);
  }
  if (config.configServer?.url) arg('config_server', config.configServer.url);
  if (config.configServer?.key) arg('config_key', config.configServer.key);
  if (config.localBootTrigger) arg('local_boot_trigger', config.localBootTrigger);
  out.push(...(config.bootloaderArgs ?? []));
  return out.join(' ');
}

// ---------------------------------------------------------------------------------------------
// A readable summary, for `hvnode-node cmdline` without --json.

function flatten(value: unknown, path: string, lines: string[]): void {
  if (Array.isArray(value) && value.every((v) => typeof v !== 'object')) {
    lines.push(`  ${path}: ${value.map((v) => printable(String(v))).join(' ')}`);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => {
      flatten(v, `${path}[${i}]`, lines);
    });
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) flatten(v, path ? `${path}.${k}` : k, lines);
  } else {
    lines.push(`  ${path}: ${printable(String(value))}`);
  }
}

/** The settings as `path: value` lines, the boot's own arguments, then the unknown ones (errors are the caller's). */
export function describeCmdline(result: CmdlineResult): string {
  const lines = ['NodeConfig:'];
  flatten(result.config, '', lines);
  if (lines.length === 1) lines.push('  (nothing set)');
  const boot = ['Boot (root=, hvnode.*):'];
  flatten(result.kernel, '', boot);
  if (boot.length > 1) lines.push(...boot);
  lines.push('Unknown arguments (kept for the bootloader):');
  for (const u of result.unknown) lines.push(`  ${printable(u)}`);
  if (result.unknown.length === 0) lines.push('  (none)');
  return `${lines.join('\n')}\n`;
}
