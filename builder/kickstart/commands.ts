// The kickstart command set that pykickstart accepts for current Fedora and RHEL handlers (the
// union of the F40..F46 and RHEL 9/10 command maps), as static data: command names, their
// options with the spellings pykickstart accepts, which options take a value, and how many
// positional arguments each command takes. Commands and options that pykickstart deprecated or
// removed carry the reason, paraphrased. The parser looks commands up here; the builder's own,
// stricter specs for the commands it acts on live in parser.ts.

/** flag: takes no value; value: any string; int: a whole number; optional: `--opt` or `--opt=VALUE`; a list: one of these words. */
export type OptionKind = 'flag' | 'value' | 'int' | 'optional' | readonly string[];
export type OptionSpec = Readonly<Record<string, OptionKind>>;

export interface ArgCount {
  min: number;
  max: number;
  /** Shown when too few are given, e.g. 'a mount point, e.g. "part / --size=4096"'. */
  what?: string;
}

export interface KsCommandInfo {
  /** Undefined: options are passed through unchecked (auth/authselect hand theirs to a tool). */
  options?: OptionSpec;
  /** Other spellings pykickstart accepts for an option: alias -> canonical name in `options`. */
  aliases?: Readonly<Record<string, string>>;
  /** Positional arguments (none when absent). */
  args?: ArgCount;
  /** Options that must be given. */
  required?: readonly string[];
  /** Groups of options of which at most one may be given. */
  exclusive?: readonly (readonly string[])[];
  /** Options (canonical or alias spelling) that pykickstart still accepts with a deprecation warning: the reason. */
  deprecatedOptions?: Readonly<Record<string, string>>;
  /** Options pykickstart no longer accepts: the reason (an error). */
  removedOptions?: Readonly<Record<string, string>>;
  /** The command still parses, with a deprecation warning: the reason. */
  deprecated?: string;
}

export interface KsRemovedCommand {
  /** Why the command is refused (an error), paraphrasing pykickstart. */
  removed: string;
}

const ANY: ArgCount = { min: 0, max: Number.POSITIVE_INFINITY };
const NO_OPTIONS: KsCommandInfo = { options: {} };

/** LUKS options shared by part, raid, logvol and autopart. */
const LUKS: OptionSpec = {
  encrypted: 'flag',
  passphrase: 'value',
  escrowcert: 'value',
  backuppassphrase: 'flag',
  cipher: 'value',
  'luks-version': 'value',
  pbkdf: 'value',
  'pbkdf-memory': 'int',
  'pbkdf-time': 'int',
  'pbkdf-iterations': 'int',
};

/** Format options shared by part, raid and logvol. */
const FORMAT: OptionSpec = {
  fstype: 'value',
  fsoptions: 'value',
  fsprofile: 'value',
  mkfsoptions: 'value',
  label: 'value',
  noformat: 'flag',
};

const DISPLAY_MODE: KsCommandInfo = { options: { 'non-interactive': 'flag' } };
const POWER: KsCommandInfo = { options: { eject: 'flag', kexec: 'flag' } };
const PARTITION: KsCommandInfo = {
  options: {
    ...FORMAT,
    ...LUKS,
    size: 'int',
    grow: 'flag',
    maxsize: 'int',
    onpart: 'value',
    ondisk: 'value',
    asprimary: 'flag',
    recommended: 'flag',
    hibernation: 'flag',
    resize: 'flag',
  },
  aliases: { usepart: 'onpart', ondrive: 'ondisk' },
  args: { min: 1, max: 1, what: 'a mount point, e.g. "part / --size=4096"' },
  exclusive: [['size', 'recommended', 'hibernation']],
  removedOptions: {
    'bytes-per-inode': 'removed in Fedora 9',
    start: 'removed in Fedora 9',
    end: 'removed in Fedora 9',
    active: 'removed in Fedora Core 4',
    type: 'removed in Fedora Core 4: use --fstype',
  },
};
const AUTHCONFIG: KsCommandInfo = {
  args: ANY,
  deprecated:
    'deprecated in Fedora 28 and removed in Fedora 35 (RHEL 9 still accepts it): authconfig was replaced by authselect, use the "authselect" command',
};

/** Every command name pykickstart knows for the current Fedora/RHEL handlers, aliases included. */
export const KS_COMMANDS: Readonly<Record<string, KsCommandInfo>> = {
  auth: AUTHCONFIG,
  authconfig: AUTHCONFIG,
  authselect: { args: ANY },
  autopart: {
    options: {
      ...LUKS,
      type: ['lvm', 'btrfs', 'plain', 'thinp'],
      fstype: 'value',
      nolvm: 'flag',
      nohome: 'flag',
      noboot: 'flag',
      noswap: 'flag',
      hibernation: 'flag',
    },
    exclusive: [['type', 'nolvm']],
  },
  autostep: {
    options: { autoscreenshot: 'flag' },
    deprecated: 'deprecated in Fedora 34 and removed in Fedora 40: it no longer has any effect, remove it',
  },
  bootc: {
    options: {
      stateroot: 'value',
      'source-imgref': 'value',
      'target-imgref': 'value',
      bootloader: ['none', 'grub', 'systemd'],
      composefs: 'flag',
    },
    required: ['source-imgref'],
  },
  bootloader: {
    options: {
      append: 'value',
      timeout: 'int',
      location: ['mbr', 'partition', 'none', 'boot'],
      driveorder: 'value',
      'boot-drive': 'value',
      password: 'value',
      iscrypted: 'flag',
      md5pass: 'value',
      leavebootorder: 'flag',
      disabled: 'flag',
      nombr: 'flag',
      extlinux: 'flag',
      sdboot: 'flag',
    },
    removedOptions: {
      upgrade: 'removed in Fedora 29 together with the upgrade command',
      useLilo: 'removed: LILO is no longer supported',
      lba32: 'removed in Fedora 15',
      linear: 'removed in Fedora 15',
      nolinear: 'removed in Fedora 15',
    },
  },
  btrfs: {
    options: {
      noformat: 'flag',
      useexisting: 'flag',
      label: 'value',
      data: 'value',
      metadata: 'value',
      subvol: 'flag',
      name: 'value',
      mkfsoptions: 'value',
    },
    args: { min: 1, max: Number.POSITIVE_INFINITY, what: 'a mount point (and its devices)' },
  },
  cdrom: NO_OPTIONS,
  clearpart: {
    options: {
      all: 'flag',
      linux: 'flag',
      none: 'flag',
      list: 'value',
      drives: 'value',
      initlabel: 'flag',
      disklabel: 'value',
      cdl: 'flag',
    },
    exclusive: [['all', 'linux', 'none', 'list']],
  },
  cmdline: DISPLAY_MODE,
  driverdisk: {
    options: { source: 'value', biospart: 'value' },
    args: { min: 0, max: 1 },
  },
  eula: { options: { agreed: 'flag' }, required: ['agreed'] },
  fcoe: { options: { nic: 'value', dcb: 'flag', autovlan: 'flag' }, required: ['nic'] },
  firewall: {
    options: {
      enabled: 'flag',
      disabled: 'flag',
      port: 'value',
      trust: 'value',
      service: 'value',
      'remove-service': 'value',
      'use-system-defaults': 'flag',
      ssh: 'flag',
      smtp: 'flag',
      http: 'flag',
      ftp: 'flag',
      telnet: 'flag',
    },
    aliases: { enable: 'enabled', disable: 'disabled' },
    exclusive: [['enabled', 'disabled']],
    removedOptions: { high: 'removed in Fedora Core 3', medium: 'removed in Fedora Core 3' },
  },
  firstboot: {
    options: { enable: 'flag', disable: 'flag', reconfig: 'flag' },
    aliases: { enabled: 'enable', disabled: 'disable' },
    exclusive: [['enable', 'disable', 'reconfig']],
  },
  graphical: DISPLAY_MODE,
  group: { options: { name: 'value', gid: 'int' }, required: ['name'] },
  halt: POWER,
  harddrive: {
    options: { partition: 'value', dir: 'value' },
    required: ['dir'],
    removedOptions: { biospart: 'removed in Fedora 33' },
  },
  hmc: NO_OPTIONS,
  ignoredisk: {
    options: { drives: 'value', 'only-use': 'value' },
    exclusive: [['drives', 'only-use']],
    removedOptions: { interactive: 'removed in Fedora 34' },
  },
  iscsi: {
    options: {
      target: 'value',
      ipaddr: 'value',
      port: 'value',
      user: 'value',
      password: 'value',
      'reverse-user': 'value',
      'reverse-password': 'value',
      iface: 'value',
    },
    required: ['ipaddr'],
  },
  iscsiname: { options: {}, args: { min: 1, max: 1, what: 'an iSCSI initiator name' } },
  keyboard: {
    options: { vckeymap: 'value', xlayouts: 'value', switch: 'value' },
    args: { min: 0, max: 1 },
  },
  lang: { options: { addsupport: 'value' }, args: { min: 1, max: 1, what: 'a language' } },
  liveimg: {
    options: { url: 'value', proxy: 'value', noverifyssl: 'flag', checksum: 'value' },
    required: ['url'],
  },
  logging: {
    options: { host: 'value', port: 'value', level: ['debug', 'info', 'warning', 'error', 'critical'] },
    deprecatedOptions: {
      level: 'deprecated in Fedora 34 and removed in Fedora 40: it no longer has any effect',
    },
  },
  logvol: {
    options: {
      ...FORMAT,
      ...LUKS,
      vgname: 'value',
      name: 'value',
      size: 'int',
      grow: 'flag',
      maxsize: 'int',
      percent: 'int',
      recommended: 'flag',
      hibernation: 'flag',
      useexisting: 'flag',
      resize: 'flag',
      thinpool: 'flag',
      thin: 'flag',
      poolname: 'value',
      chunksize: 'int',
      metadatasize: 'int',
      profile: 'value',
      cachesize: 'int',
      cachemode: ['writeback', 'writethrough'],
      cachepvs: 'value',
    },
    args: { min: 1, max: 1, what: 'a mount point, e.g. "logvol / --vgname=vg0 --name=root --size=4096"' },
    required: ['vgname', 'name'],
    exclusive: [['size', 'percent', 'recommended', 'hibernation']],
    removedOptions: { 'bytes-per-inode': 'removed in Fedora 9' },
  },
  mediacheck: NO_OPTIONS,
  method: {
    args: ANY,
    deprecated:
      'deprecated in Fedora 34 and removed in Fedora 40: give the installation source itself (url, cdrom, nfs, harddrive or liveimg)',
  },
  module: {
    options: { name: 'value', stream: 'value', disable: 'flag' },
    required: ['name'],
    deprecated:
      'removed in Fedora 45 with the end of modularity (RHEL 9 and 10 still accept it): list the packages in %packages instead',
  },
  mount: {
    options: { reformat: 'optional', mkfsoptions: 'value', mountoptions: 'value' },
    args: { min: 2, max: 2, what: 'a device and a mount point, e.g. "mount /dev/vda1 /boot"' },
  },
  network: {
    options: {
      bootproto: ['dhcp', 'bootp', 'static', 'ibft', 'query'],
      device: 'value',
      hostname: 'value',
      ip: 'value',
      netmask: 'value',
      gateway: 'value',
      nameserver: 'value',
      onboot: 'value',
      activate: 'flag',
      'no-activate': 'flag',
      noipv4: 'flag',
      noipv6: 'flag',
      ipv6: 'value',
      ipv6gateway: 'value',
      nodefroute: 'flag',
      nodns: 'flag',
      notksdevice: 'flag',
      mtu: 'int',
      ethtool: 'value',
      essid: 'value',
      wepkey: 'value',
      wpakey: 'value',
      dhcpclass: 'value',
      vlanid: 'int',
      interfacename: 'value',
      bondslaves: 'value',
      bondopts: 'value',
      bridgeslaves: 'value',
      bridgeopts: 'value',
      teamslaves: 'value',
      teamconfig: 'value',
      bindto: ['mac'],
      'ipv4-dns-search': 'value',
      'ipv6-dns-search': 'value',
      'ipv4-ignore-auto-dns': 'flag',
      'ipv6-ignore-auto-dns': 'flag',
    },
    exclusive: [['activate', 'no-activate']],
  },
  nfs: { options: { server: 'value', dir: 'value', opts: 'value' }, required: ['server', 'dir'] },
  nvdimm: {
    options: { namespace: 'value', mode: ['sector'], sectorsize: 'int', blockdevs: 'value' },
    args: { min: 1, max: 1, what: 'an action: reconfigure or use' },
    deprecated: 'deprecated in Fedora 40 and removed in Fedora 45 (RHEL 9 and 10 still accept it)',
  },
  ostreecontainer: {
    options: {
      stateroot: 'value',
      remote: 'value',
      transport: 'value',
      url: 'value',
      'no-signature-verification': 'flag',
    },
    required: ['url'],
  },
  ostreesetup: {
    options: { osname: 'value', remote: 'value', url: 'value', ref: 'value', nogpg: 'flag' },
    required: ['osname', 'url', 'ref'],
  },
  part: PARTITION,
  partition: PARTITION,
  poweroff: POWER,
  raid: {
    options: {
      ...FORMAT,
      ...LUKS,
      level: 'value',
      device: 'value',
      spares: 'int',
      useexisting: 'flag',
      chunksize: 'int',
    },
    args: {
      min: 1,
      max: Number.POSITIVE_INFINITY,
      what: 'a mount point and its member partitions, e.g. "raid / --level=1 --device=md0 raid.01 raid.02"',
    },
    removedOptions: { 'bytes-per-inode': 'removed in Fedora 9' },
  },
  rdp: { options: { username: 'value', password: 'value' } },
  realm: {
    args: { min: 1, max: Number.POSITIVE_INFINITY, what: 'a subcommand, e.g. "realm join example.com"' },
  },
  reboot: POWER,
  repo: {
    options: {
      name: 'value',
      baseurl: 'value',
      mirrorlist: 'value',
      metalink: 'value',
      cost: 'int',
      excludepkgs: 'value',
      includepkgs: 'value',
      proxy: 'value',
      ignoregroups: ['true', 'false'],
      noverifyssl: 'flag',
      sslcacert: 'value',
      sslclientcert: 'value',
      sslclientkey: 'value',
      install: 'flag',
    },
    required: ['name'],
    exclusive: [['baseurl', 'mirrorlist', 'metalink']],
  },
  reqpart: { options: { 'add-boot': 'flag' } },
  rescue: { options: { nomount: 'flag', romount: 'flag' }, exclusive: [['nomount', 'romount']] },
  rhsm: {
    options: {
      organization: 'value',
      'activation-key': 'value',
      'connect-to-insights': 'flag',
      'server-hostname': 'value',
      'rhsm-baseurl': 'value',
      proxy: 'value',
    },
  },
  rootpw: {
    options: { iscrypted: 'flag', plaintext: 'flag', lock: 'flag', 'allow-ssh': 'flag' },
    args: { min: 0, max: 1 },
    exclusive: [['iscrypted', 'plaintext']],
  },
  selinux: {
    options: { enforcing: 'flag', permissive: 'flag', disabled: 'flag' },
    exclusive: [['enforcing', 'permissive', 'disabled']],
  },
  services: { options: { enabled: 'value', disabled: 'value' } },
  shutdown: POWER,
  skipx: NO_OPTIONS,
  snapshot: {
    options: { name: 'value', when: ['pre-install', 'post-install'] },
    args: {
      min: 1,
      max: 1,
      what: 'a thin logical volume, e.g. "snapshot vg0/root --name=pre --when=pre-install"',
    },
    required: ['name', 'when'],
  },
  sshkey: {
    options: { username: 'value' },
    args: { min: 1, max: 1, what: 'a public key, e.g. sshkey --username=root "ssh-ed25519 AAAA..."' },
    required: ['username'],
  },
  sshpw: {
    options: { username: 'value', iscrypted: 'flag', plaintext: 'flag', lock: 'flag', sshkey: 'flag' },
    args: { min: 1, max: 1, what: 'a password (or a key with --sshkey)' },
    required: ['username'],
    exclusive: [['iscrypted', 'plaintext']],
  },
  stratisfs: {
    options: { pool: 'value', name: 'value', size: 'int' },
    args: { min: 1, max: 1, what: 'a mount point' },
    required: ['pool', 'name'],
  },
  stratispool: {
    options: { encrypted: 'flag', passphrase: 'value' },
    args: { min: 2, max: Number.POSITIVE_INFINITY, what: 'a pool name and its block devices' },
  },
  syspurpose: { options: { role: 'value', sla: 'value', usage: 'value', addon: 'value' } },
  text: DISPLAY_MODE,
  timesource: {
    options: { 'ntp-server': 'value', 'ntp-pool': 'value', nts: 'flag', 'ntp-disable': 'flag' },
  },
  timezone: {
    options: { utc: 'flag', nontp: 'flag', ntpservers: 'value' },
    aliases: { isUtc: 'utc' },
    args: { min: 0, max: 1 },
    deprecatedOptions: {
      isUtc: 'pykickstart (Fedora 32+) asks for its preferred spelling --utc',
      ntpservers: 'pykickstart (Fedora 33+) asks for one "timesource --ntp-server=HOST" per server instead',
      nontp: 'pykickstart (Fedora 33+) asks for "timesource --ntp-disable" instead',
    },
  },
  updates: { options: {}, args: { min: 0, max: 1 } },
  url: {
    options: {
      url: 'value',
      mirrorlist: 'value',
      metalink: 'value',
      proxy: 'value',
      noverifyssl: 'flag',
      sslcacert: 'value',
      sslclientcert: 'value',
      sslclientkey: 'value',
    },
    exclusive: [['url', 'mirrorlist', 'metalink']],
  },
  user: {
    options: {
      name: 'value',
      groups: 'value',
      homedir: 'value',
      password: 'value',
      iscrypted: 'flag',
      plaintext: 'flag',
      lock: 'flag',
      shell: 'value',
      uid: 'int',
      gid: 'int',
      gecos: 'value',
    },
    required: ['name'],
    exclusive: [['iscrypted', 'plaintext']],
  },
  vnc: {
    options: { host: 'value', port: 'value', password: 'value' },
    removedOptions: { connect: 'removed in Fedora 9: use --host and --port' },
  },
  volgroup: {
    options: {
      noformat: 'flag',
      useexisting: 'flag',
      pesize: 'int',
      'reserved-space': 'int',
      'reserved-percent': 'int',
    },
    args: {
      min: 1,
      max: Number.POSITIVE_INFINITY,
      what: 'a volume group name and its physical volumes, e.g. "volgroup vg0 pv.01"',
    },
    exclusive: [['reserved-space', 'reserved-percent']],
  },
  xconfig: {
    options: { defaultdesktop: 'value', startxonboot: 'flag' },
    removedOptions: Object.fromEntries(
      [
        'card',
        'driver',
        'depth',
        'hsync',
        'monitor',
        'noprobe',
        'resolution',
        'server',
        'videoram',
        'vsync',
      ].map((o) => [o, 'removed by Fedora 14: X configures the display itself']),
    ),
  },
  zerombr: NO_OPTIONS,
  zfcp: { options: { devnum: 'value', wwpn: 'value', fcplun: 'value' }, required: ['devnum'] },
  zipl: {
    options: { 'secure-boot': 'flag', 'force-secure-boot': 'flag', 'no-secure-boot': 'flag' },
    exclusive: [['secure-boot', 'force-secure-boot', 'no-secure-boot']],
  },
};

/** Commands that current pykickstart handlers refuse, with the reason. */
export const KS_REMOVED_COMMANDS: Readonly<Record<string, KsRemovedCommand>> = {
  install: {
    removed: 'deprecated in Fedora 29 and removed in Fedora 34: installing is the only mode, drop the line',
  },
  upgrade: {
    removed:
      'deprecated in Fedora 20 and removed in Fedora 29: kickstart no longer upgrades systems, use "dnf system-upgrade"',
  },
  device: {
    removed:
      'removed in Fedora 34: the installer loads kernel modules itself; use inst.dd/driverdisk for drivers',
  },
  deviceprobe: { removed: 'removed in Fedora 34: devices are probed automatically' },
  dmraid: { removed: 'removed in Fedora 34: firmware RAID sets are detected automatically' },
  multipath: { removed: 'removed in Fedora 34: multipath devices are detected automatically' },
  monitor: { removed: 'deprecated in Fedora 10 and removed in Fedora 18: X probes the monitor itself' },
  interactive: {
    removed: 'deprecated in Fedora 14 and later removed: kickstart installs are not interactive',
  },
  key: { removed: 'RHEL 5/6 only (installation number); no current handler knows it, drop the line' },
  langsupport: { removed: 'deprecated in Fedora Core 5 and later removed: use "lang" and %packages' },
  lilo: { removed: 'LILO is no longer supported: use "bootloader"' },
  lilocheck: { removed: 'LILO is no longer supported: drop the line' },
  mouse: { removed: 'deprecated in Fedora Core 3 and later removed: the mouse is probed automatically' },
  unsupported_hardware: { removed: 'RHEL 6-8 only; removed in RHEL 9: drop the line' },
};

/** Section headers, with the options each takes. `%addon` takes its add-on name and passes the rest through. */
const SCRIPT_OPTIONS: OptionSpec = { interpreter: 'value', erroronfail: 'flag', log: 'value' };
const SCRIPT_ALIASES = { logfile: 'log' } as const;

export interface KsSectionInfo {
  options?: OptionSpec;
  aliases?: Readonly<Record<string, string>>;
  exclusive?: readonly (readonly string[])[];
  deprecatedOptions?: Readonly<Record<string, string>>;
}

export const KS_SECTIONS: Readonly<Record<string, KsSectionInfo>> = {
  '%packages': {
    options: {
      excludedocs: 'flag',
      ignoremissing: 'flag',
      ignorebroken: 'flag',
      default: 'flag',
      instLangs: 'value',
      multilib: 'flag',
      nocore: 'flag',
      nobase: 'flag',
      excludeWeakdeps: 'flag',
      retries: 'int',
      timeout: 'int',
    },
    aliases: { 'inst-langs': 'instLangs', 'exclude-weakdeps': 'excludeWeakdeps' },
    exclusive: [
      ['default', 'nocore'],
      ['default', 'nobase'],
    ],
    deprecatedOptions: {
      nobase:
        'deprecated in Fedora 18 and removed in Fedora 22: there is no @base group to leave out any more',
      instLangs: 'pykickstart (Fedora 32+) asks for its preferred spelling --inst-langs',
      excludeWeakdeps: 'pykickstart (Fedora 32+) asks for its preferred spelling --exclude-weakdeps',
    },
  },
  '%pre': { options: SCRIPT_OPTIONS, aliases: SCRIPT_ALIASES },
  '%pre-install': { options: SCRIPT_OPTIONS, aliases: SCRIPT_ALIASES },
  '%post': { options: { ...SCRIPT_OPTIONS, nochroot: 'flag' }, aliases: SCRIPT_ALIASES },
  '%onerror': { options: SCRIPT_OPTIONS, aliases: SCRIPT_ALIASES },
  '%traceback': { options: SCRIPT_OPTIONS, aliases: SCRIPT_ALIASES },
  '%addon': {},
  '%anaconda': { options: {} },
};

/** Commands of the %anaconda section. */
export const KS_ANACONDA_COMMANDS: Readonly<Record<string, KsCommandInfo>> = {
  pwpolicy: {
    options: {
      minlen: 'int',
      minquality: 'int',
      strict: 'flag',
      nostrict: 'flag',
      notempty: 'flag',
      emptyok: 'flag',
      changesok: 'flag',
      nochanges: 'flag',
    },
    args: { min: 1, max: 1, what: 'a policy name: root, user or luks' },
    exclusive: [
      ['strict', 'nostrict'],
      ['notempty', 'emptyok'],
      ['changesok', 'nochanges'],
    ],
  },
};

/** Edit distance, for "did you mean" hints. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((previous[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost));
    }
    previous = row;
  }
  return previous[b.length] ?? 0;
}

/** The nearest of `names` to `word` (at most 2 edits, or a prefix of 3+ letters), if any. */
export function nearest(word: string, names: Iterable<string>): string | undefined {
  const lower = word.toLowerCase();
  let best: { name: string; distance: number } | undefined;
  for (const name of names) {
    const n = name.toLowerCase();
    const distance = lower.length >= 3 && n.startsWith(lower) ? 1 : editDistance(n, lower);
    if (distance <= 2 && (!best || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}
