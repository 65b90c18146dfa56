// NodeConfig: the one model of a node's configuration. The kernel command line, the TUI and
// config bundles all produce it; the apply steps consume it. It is written once, as a JSON
// Schema `as const`; the TypeScript types are derived from it (FromSchema), and rules.ts adds
// what a schema cannot say (validateNodeConfig applies both).
//
// The schema only admits configurations that the kernel command line can express, so that
// formatCmdline() → parseCmdline() gives back the same object (tests check this property). That
// is why some fields are restricted beyond what a system could do (e.g. `{first: true}` is the
// only item of a HostVG disk list, and bootloaderArgs may not hold an argument NodeConfig claims).
// What only the TUI or a bundle can say (SSH keys, several NICs, files) is still to be added;
// the round-trip tests then keep to the command-line subset.

import { Ajv, type ValidateFunction } from 'ajv';
import { describeSchemaError, Report } from '../../common/index.ts';
import { ruleProblems } from './rules.ts';

// ---------------------------------------------------------------------------------------------
// Value formats. The cmdline parser checks values against these same patterns, so whatever it
// accepts also passes the schema. Patterns are compiled with the `u` flag, as ajv does.

const IPV4 = String.raw`(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}`;

/** RFC 4291 text forms (`::` compression, embedded IPv4), no zone index. */
const IPV6 = (() => {
  const h = '[0-9A-Fa-f]{1,4}';
  const alts = [`(?:${h}:){7}${h}`, `(?:${h}:){6}${IPV4}`];
  for (let left = 0; left <= 7; left++) {
    const l = left === 0 ? '' : `(?:${h}:){${left - 1}}${h}`;
    const right = 7 - left;
    alts.push(`${l}::${right === 0 ? '' : `(?:${h}(?::${h}){0,${right - 1}})?`}`);
    if (left <= 5) alts.push(`${l}::(?:${h}:){0,${5 - left}}${IPV4}`);
  }
  return `(?:${alts.join('|')})`;
})();

/**
 * RFC 1123 host name (labels of letters, digits and inner hyphens). The last label may not be
 * all digits, so that `1.2.3.4` or `999.1.1.1` is never taken for a name. No length check here:
 * the pattern is also embedded in URLs; standalone names get maxLength 253.
 */
const HOSTNAME = String.raw`(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*(?![0-9]+(?![A-Za-z0-9-]))[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?`;
const HOST_IN_URL = String.raw`(?:${HOSTNAME}|${IPV4}|\[${IPV6}\])`;
const PORT = String.raw`(?:6553[0-5]|655[0-2]\d|65[0-4]\d{2}|6[0-4]\d{3}|[1-5]\d{4}|[1-9]\d{0,3})`;

/**
 * Printable ASCII without space, `"`, `,` and `;`: what fits in a list item of a kernel
 * argument (`,` and `;` are the list separators, `"` is the kernel's quote).
 */
const ITEM_CHAR = String.raw`[!#-+\-.-:<-~]`;

/** Anchored patterns, by name; `valuePattern(name)` gives the compiled RegExp. */
export const valuePatterns = {
  ipv4: `^${IPV4}$`,
  ipv6: `^${IPV6}$`,
  ipAddress: `^(?:${IPV4}|${IPV6})$`,
  /** A host to connect to: a name, an IPv4 or an IPv6 address (no brackets). */
  host: `^(?:${HOSTNAME}|${IPV4}|${IPV6})$`,
  hostname: `^${HOSTNAME}$`,
  /** Contiguous IPv4 netmask in dotted form, /1 to /32. */
  netmask: (() => {
    const m = '(?:255|254|252|248|240|224|192|128|0)';
    const m1 = '(?:255|254|252|248|240|224|192|128)';
    return String.raw`^(?:255\.255\.255\.${m}|255\.255\.${m}\.0|255\.${m}\.0\.0|${m1}\.0\.0\.0)$`;
  })(),
  /** Lowercase, colon-separated (as /sys/class/net/NIC/address shows it). */
  mac: '^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$',
  /** A network interface name (IFNAMSIZ: at most 15 characters). */
  nic: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$',
  devicePath: String.raw`^/dev(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._+:@=-]+)+$`,
  diskSerial: `^${ITEM_CHAR}+$`,
  /** A dm-crypt cipher specification, e.g. aes-cbc-essiv:sha256, aes-xts-plain64. */
  cipher: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$',
  /**
   * crypt(3) hashes, each with its own shape so that a truncated one is refused too: md5 ($1$),
   * bcrypt ($2b$), sha256 ($5$), sha512 ($6$), yescrypt ($y$), gost-yescrypt ($gy$), scrypt ($7$).
   */
  cryptHash: (() => {
    const c = '[./0-9A-Za-z]';
    const shapes = [
      String.raw`\$1\$${c}{0,8}\$${c}{22}`,
      String.raw`\$2[abxy]?\$\d{2}\$${c}{53}`,
      String.raw`\$5\$(?:rounds=[1-9]\d{0,8}\$)?${c}{0,16}\$${c}{43}`,
      String.raw`\$6\$(?:rounds=[1-9]\d{0,8}\$)?${c}{0,16}\$${c}{86}`,
      String.raw`\$g?y\$${c}{1,64}\$${c}{0,86}\$${c}{43}`,
      String.raw`\$7\$${c}{11,110}\$${c}{43}`,
    ];
    return `^(?:${shapes.join('|')})$`;
  })(),
  /** `OPTION=VALUE` for the bonding driver, e.g. mode=802.3ad, miimon=100. */
  bondOption: `^[A-Za-z0-9_]+=${ITEM_CHAR}+$`,
  /** `host:/path`, as kdump's nfs target. */
  nfsTarget: `^${HOST_IN_URL}:/[!#-~]*$`,
  /** `user@host`, as kdump's ssh target. */
  sshTarget: `^[a-z_][a-z0-9_-]{0,31}@${HOST_IN_URL}$`,
  /** RFC 3720 iSCSI names: iqn.YYYY-MM.reversed.domain[:id], eui.16HEX, naa.16/32HEX. */
  iscsiName: String.raw`^(?:iqn\.\d{4}-\d{2}\.[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[A-Za-z0-9.:_-]+)?|eui\.[0-9A-Fa-f]{16}|naa\.[0-9A-Fa-f]{16}(?:[0-9A-Fa-f]{16})?)$`,
  /** Colon-separated hex bytes of a SHA-1 (20 bytes) or SHA-256 (32 bytes) certificate digest. */
  fingerprint: '^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){19}(?:(?::[0-9A-Fa-f]{2}){12})?$',
  /** An Ed25519 public key in base64 (32 bytes), or its digest as `sha256:` + 64 hex digits. */
  bundleKey: '^(?:[A-Za-z0-9+/]{43}=|sha256:[0-9a-f]{64})$',
  /**
   * A keyboard layout as XKB names it (XKBLAYOUT of /etc/default/keyboard: 2-8 lowercase
   * letters, e.g. us, gb, de, ch, jp), optionally `-VARIANT` (XKBVARIANT: letters, digits, `_`
   * and inner `-`, e.g. de-nodeadkeys, us-alt-intl). The layout part has no `-`, so the first
   * one separates the two.
   */
  keyboard: '^[a-z]{2,8}(?:-[A-Za-z0-9](?:[A-Za-z0-9_-]{0,30}[A-Za-z0-9])?)?$',
  /** http(s) URL without credentials; printable ASCII, no spaces or quotes. */
  url: `^https?://${HOST_IN_URL}(?::${PORT})?(?:[/?#][!#-~]*)?$`,
} as const;

export type ValuePatternName = keyof typeof valuePatterns;

const compiled = new Map<ValuePatternName, RegExp>();

/** The compiled form of one of `valuePatterns`. */
export function valuePattern(name: ValuePatternName): RegExp {
  let re = compiled.get(name);
  if (!re) {
    re = new RegExp(valuePatterns[name], 'u');
    compiled.set(name, re);
  }
  return re;
}

/**
 * Kernel arguments that NodeConfig claims (every spelling the parser knows). An argument with
 * one of these names can't be kept in bootloaderArgs: it would be read back as configuration.
 */
export const CLAIMED_ARGS = [
  'BOOTIF',
  'storage_init',
  'ovirt_init',
  'storage_vol',
  'ovirt_vol',
  'swap_encrypt',
  'ovirt_swap_encrypt',
  'mem_overcommit',
  'ovirt_overcommit',
  'wipe_fakeraid',
  'install',
  'upgrade',
  'ovirt_upgrade',
  'local_boot',
  'ovirt_local_boot',
  'firstboot',
  'ovirt_firstboot',
  'reinstall',
  'uninstall',
  'stateless',
  'ovirt_stateless',
  'standalone',
  'ovirt_standalone',
  'runtime_mode',
  'rescue',
  'adminpw',
  'rootpw',
  'ssh_pwauth',
  'hostname',
  'keyboard',
  'ip',
  'netmask',
  'gateway',
  'ipv6',
  'ipv6_gateway',
  'dns',
  'ntp',
  'vlan',
  'bond',
  'bond_setup',
  'syslog',
  'netconsole',
  'logrotate_max_size',
  'collectd',
  'kdump_nfs',
  'kdump_ssh',
  'iscsi_name',
  'iscsi_init',
  'iscsi_server',
  'iscsi_target_name',
  'iscsi_install',
  'management_server',
  'managment_server',
  'ovirt_managment_server',
  'management_port',
  'management_server_fingerprint',
  'config_server',
  'config_key',
  'local_boot_trigger',
] as const;

export type ClaimedArg = (typeof CLAIMED_ARGS)[number];

/**
 * One kernel argument exactly as it stood on the command line: no unquoted whitespace, quotes
 * balanced (the kernel's grouping), and not a claimed argument — however it is quoted
 * (`ip=…`, `"ip=…"`, `ip`, `"ip"` all name `ip`).
 */
const BOOTLOADER_ARG = `^(?!"?(?:${CLAIMED_ARGS.join('|')})(?:=|"?$))(?:[^ \\t\\n\\v\\f\\r"]|"[^"]*")+$`;

// ---------------------------------------------------------------------------------------------
// The JSON Schema (draft-07, as ajv's default class takes it), written `as const`: the
// TypeScript types below are derived from it (FromSchema), so the two cannot drift apart.

const str = <const N extends ValuePatternName, const L extends number = 255>(name: N, maxLength?: L) =>
  ({ type: 'string', maxLength: (maxLength ?? 255) as L, pattern: valuePatterns[name] }) as const;
const port = { type: 'integer', minimum: 1, maximum: 65535 } as const;
const flag = { type: 'boolean' } as const;
/** An object with only these keys, at least one of them (NodeConfig has no empty sections). */
const section = <const P extends Record<string, object>, const R extends readonly (keyof P & string)[] = []>(
  properties: P,
  required?: R,
) =>
  ({
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    required: (required ?? []) as R,
    properties,
  }) as const;
const host = str('host', 253);
const endpoint = section({ server: host, port }, ['server']);
const maxMB = 2 ** 31 - 1;
/** The largest logrotate size limit in KB (1 GiB). */
export const LOGROTATE_MAX_KB = 1_048_576;
const size = { type: 'integer', minimum: 0, maximum: maxMB } as const;
const sizeOrRest = { type: 'integer', minimum: -1, maximum: maxMB } as const;

const diskBus = { enum: ['ata', 'scsi', 'usb', 'cciss'] } as const;
/** A disk named by the command line: a device path, or a bus with a udev ID_SERIAL (or ALL). */
const disk = {
  oneOf: [
    section({ path: str('devicePath', 1024) }, ['path']),
    section({ bus: diskBus, serial: str('diskSerial') }, ['bus']),
  ],
} as const;
const firstDisk = section({ first: { const: true } }, ['first']);
const volumeSizes = section({
  efi: size,
  boot: size,
  swap: size,
  root: size,
  config: size,
  logging: size,
  data: sizeOrRest,
  swap2: size,
  data2: sizeOrRest,
});
const ipConfig = {
  oneOf: [
    section({ mode: { enum: ['dhcp', 'off'] } }, ['mode']),
    section(
      { mode: { const: 'static' }, address: str('ipv4'), netmask: str('netmask'), gateway: str('ipv4') },
      ['mode', 'address'],
    ),
  ],
} as const;
const ipv6Config = {
  oneOf: [
    section({ mode: { enum: ['auto', 'dhcp'] } }, ['mode']),
    section(
      {
        mode: { const: 'static' },
        address: str('ipv6'),
        prefix: { type: 'integer', minimum: 1, maximum: 128 },
        gateway: str('ipv6'),
      },
      ['mode', 'address'],
    ),
  ],
} as const;
/** The management NIC: by MAC (as PXE reports it), by name, or the first with a link. */
const bootInterface = {
  oneOf: [
    section({ mac: str('mac') }, ['mac']),
    section({ nic: { ...str('nic'), not: { const: 'link' } } }, ['nic']),
    section({ link: { const: true } }, ['link']),
  ],
} as const;
/**
 * What this boot does: install (auto-install), upgrade (install or upgrade onto the local disk),
 * reinstall / firstboot (overwrite and reconfigure, /config not mounted), uninstall (wipe the
 * disks and reboot), none (explicitly nothing, `firstboot=0`).
 */
const bootAction = { enum: ['install', 'upgrade', 'reinstall', 'uninstall', 'firstboot', 'none'] } as const;

export const nodeConfigSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://hvnode.dev/schemas/node-config.json',
  title: 'NodeConfig',
  type: 'object',
  additionalProperties: false,
  properties: {
    /** RFC 1123 host name, may be fully qualified. */
    hostname: str('hostname', 253),
    /** The console keyboard layout, `LAYOUT[-VARIANT]` in XKB's names (e.g. de-nodeadkeys). */
    keyboard: str('keyboard', 41),
    network: section({
      bootif: bootInterface,
      ip: ipConfig,
      ipv6: ipv6Config,
      dns: { type: 'array', minItems: 1, items: str('ipAddress') },
      ntp: { type: 'array', minItems: 1, items: host },
      vlan: section({ id: { type: 'integer', minimum: 1, maximum: 4094 }, nic: str('nic') }, ['id']),
      bond: section(
        {
          name: str('nic'),
          slaves: { type: 'array', minItems: 1, items: str('nic') },
          options: { type: 'array', minItems: 1, items: str('bondOption') },
        },
        ['name', 'slaves'],
      ),
    }),
    storage: section({
      /** Autoinstall target disks; `[{first: true}]` alone means the first disk. */
      init: section(
        {
          hostVG: {
            anyOf: [
              { type: 'array', minItems: 1, maxItems: 1, items: firstDisk },
              { type: 'array', minItems: 1, items: disk },
            ],
          },
          appVG: { type: 'array', minItems: 1, items: disk },
        },
        ['hostVG'],
      ),
      /** Sizes in MB; 0 = no such volume; -1 (data and data2 only) = the rest of the volume group. */
      volumes: volumeSizes,
      /** dm-crypt cipher per swap volume. */
      swapEncrypt: section({ swap: str('cipher'), swap2: str('cipher') }),
      /** Swap = a base by RAM size + RAM × this ratio. */
      overcommit: { type: 'number', minimum: 0, maximum: 100 },
      wipeFakeraid: flag,
    }),
    boot: {
      ...section({
        action: bootAction,
        /** Given as `local_boot`, which oVirt treated as upgrade: the node boots from disk from now on. */
        localBoot: { const: true },
        stateless: flag,
        standalone: flag,
        /** Drop to an emergency shell to repair the configuration. */
        rescue: flag,
        runtimeMode: { enum: ['ovirt', 'managed', 'none'] },
      }),
      // `local_boot` means upgrade; only a stronger action can stand beside it
      if: { type: 'object', properties: { localBoot: { const: true } }, required: ['localBoot'] },
      then: {
        type: 'object',
        properties: { action: { enum: ['upgrade', 'reinstall', 'firstboot', 'uninstall'] } },
        required: ['action'],
      },
    },
    security: section({
      /** crypt(3) hash of the admin user's password (see install/settings.ts editShadow). */
      adminPasswordHash: str('cryptHash', 1024),
      rootPasswordHash: str('cryptHash', 1024),
      sshPasswordAuth: flag,
    }),
    // the kernel's netconsole does no name lookup: an address only
    logging: section({
      syslog: endpoint,
      netconsole: section({ server: str('ipAddress', 45), port }, ['server']),
      /** logrotate's `maxsize` in KB: a log bigger than this is rotated at logrotate's next run. */
      logrotateMaxSize: { type: 'integer', minimum: 1, maximum: LOGROTATE_MAX_KB },
    }),
    kdump: {
      oneOf: [section({ nfs: str('nfsTarget', 1024) }, ['nfs']), section({ ssh: str('sshTarget') }, ['ssh'])],
    },
    monitoring: section({ collectd: endpoint }),
    iscsi: section({
      initiatorName: str('iscsiName', 223),
      target: {
        ...section({ server: host, port, name: str('iscsiName', 223) }),
        dependencies: { port: ['server'] },
      },
      /** Install the node's root onto the iSCSI target. */
      install: flag,
      /** Local disk that holds the boot partitions of an iSCSI install. */
      initDisk: str('devicePath', 1024),
    }),
    engine: section({ server: host, port, fingerprint: str('fingerprint') }, ['server']),
    /** Where this node's configuration bundle comes from, and the key its signature must verify with. */
    configServer: section({ url: str('url', 2048), key: str('bundleKey') }),
    /** GET just before the post-install reboot (`@HOSTNAME@` is replaced), e.g. to stop PXE in Foreman. */
    localBootTrigger: str('url', 2048),
    /**
     * Kernel arguments for the installed system's bootloader, verbatim and in order: crashkernel=,
     * console= and every argument NodeConfig doesn't claim.
     */
    bootloaderArgs: { type: 'array', minItems: 1, items: { type: 'string', pattern: BOOTLOADER_ARG } },
  },
} as const;

// ---------------------------------------------------------------------------------------------
// The TypeScript types, derived from the schema.

/** The value a (draft-07, `as const`) schema of the forms used above admits. */
export type FromSchema<S> = S extends { const: infer C }
  ? C
  : S extends { enum: readonly (infer E)[] }
    ? E
    : S extends { oneOf: readonly (infer U)[] }
      ? U extends unknown
        ? FromSchema<U>
        : never
      : S extends { anyOf: readonly (infer U)[] }
        ? U extends unknown
          ? FromSchema<U>
          : never
        : S extends { type: 'string' }
          ? string
          : S extends { type: 'integer' | 'number' }
            ? number
            : S extends { type: 'boolean' }
              ? boolean
              : S extends { type: 'array'; items: infer I }
                ? FromSchema<I>[]
                : S extends { type: 'object'; properties: infer P }
                  ? ObjectFromSchema<P, S extends { required: readonly (infer R)[] } ? R : never>
                  : unknown;

type ObjectFromSchema<P, R> = Simplify<
  { -readonly [K in keyof P as K extends R ? K : never]: FromSchema<P[K]> } & {
    -readonly [K in keyof P as K extends R ? never : K]?: FromSchema<P[K]>;
  }
>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};

export type NodeConfig = FromSchema<typeof nodeConfigSchema>;
export type DiskBus = FromSchema<typeof diskBus>;
/**
 * A disk for autoinstall: a device path; the first disk on a bus, one by its udev ID_SERIAL, or
 * every disk on the bus (`serial: "ALL"`); or the first disk of the system (`/dev/?da`,
 * `/dev/cciss/c?d?`), never the one the live image booted from.
 */
export type DiskSelector = FromSchema<typeof disk> | FromSchema<typeof firstDisk>;
export type VolumeSizes = FromSchema<typeof volumeSizes>;
export type VolumeName = keyof VolumeSizes;
/** Host name, IPv4 or IPv6 address, and a port. */
export type Endpoint = FromSchema<typeof endpoint>;
export type IpConfig = FromSchema<typeof ipConfig>;
export type Ipv6Config = FromSchema<typeof ipv6Config>;
export type BootInterface = FromSchema<typeof bootInterface>;
export type BootAction = FromSchema<typeof bootAction>;

// Compiled on first use: every hvnode-node start (the ready line at boot among them) loads
// this module, and compiling the schema is the costliest part of starting up.
let compiledValidator: ValidateFunction | undefined;
function validator(): ValidateFunction {
  compiledValidator ??= new Ajv({ allErrors: true, strict: true }).compile(nodeConfigSchema);
  return compiledValidator;
}

/**
 * Every schema violation of `x`, each with its JSON path (`/network/vlan/id`); for a config the
 * schema admits, every rule of rules.ts it breaks (bond options, a VLAN on a bond slave).
 */
export function validateNodeConfig(x: unknown): Report {
  const report = new Report();
  const validate = validator();
  if (validate(x)) {
    for (const p of ruleProblems(x as NodeConfig))
      report.error(`${p.path} ${p.message}`, { path: p.path, ...(p.hint ? { hint: p.hint } : {}) });
    return report;
  }
  for (const e of validate.errors ?? []) {
    report.error(`${e.instancePath || 'config'} ${describeSchemaError(e)}`, { path: e.instancePath || '/' });
  }
  return report;
}
