// The "settings" stage of autoinstall: NodeConfig → the files that carry it, written into the new
// Config filesystem in persist's layout (the copy of /etc/hostname at CONFIGROOT/etc/hostname,
// every path listed in CONFIGROOT/files), so that `persist --restore` bind-mounts them over the
// live image's files at every boot. settingsFiles() decides the contents (pure); storeSettings()
// writes them.
//
// Network: the image runs systemd-networkd, which does nothing without a .network file. The
// interface that carries the address is matched in 10-hvnode.network; a bond and a VLAN get
// their .netdev and the links below them their own .network (slaves: Bond=, the VLAN's parent:
// VLAN=). BOOTIF by MAC matches `MACAddress=` (with Type=ether, because a VLAN or bond on top
// has the same MAC), by name `Name=`; BOOTIF=link or none matches every Ethernet NIC
// (`Name=en* eth*`): with DHCP the NIC that has a link gets the lease, as oVirt's "first NIC
// with a link" did, but a static address goes on every such NIC that has a carrier (name the
// NIC for a static address on a machine with several cables).
//
// Not settings files (other stages use them): configServer, localBootTrigger, storage, boot,
// bootloaderArgs, iscsi.target/install/initDisk.

import {
  chmodSync,
  closeSync,
  fchmodSync,
  fchownSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { dirname, join } from 'node:path';
import { HvError } from '../../common/index.ts';
import type { BootInterface, Endpoint, NodeConfig } from '../config/schema.ts';
import {
  comparePaths,
  formatFilesList,
  fsyncPath,
  isUnder,
  isValidListEntry,
  parseFilesList,
  type RestoreResult,
  sortPaths,
  tempName,
} from '../persist.ts';

export interface SettingFile {
  /** Absolute path on the node. */
  path: string;
  content: string;
  mode: number;
  /** Group owner (the owner is always root); root's group when absent. */
  gid?: number;
}

/** Files of the running image that are edited rather than replaced. */
export interface ImageFiles {
  shadow: string;
  passwd: string;
  /** For the gid of "shadow" (/etc/shadow is root:shadow 0640 on Debian). */
  group?: string;
  hosts?: string;
}

const WHERE = 'hvnode-node autoinstall';
const HEADER = '# Written by hvnode-node autoinstall from the node configuration';
const NETWORK_DIR = '/etc/systemd/network';

function fail(message: string, hint?: string): HvError {
  return new HvError(message, { where: WHERE, hint });
}

function file(path: string, lines: string[], mode = 0o644): SettingFile {
  return { path, content: `${lines.join('\n')}\n`, mode };
}

// ---------------------------------------------------------------------------------------------
// Accounts

/** The gid of `name` in /etc/group text. */
export function groupId(group: string, name: string): number | undefined {
  for (const line of group.split('\n')) {
    const [n, , gid] = line.split(':');
    if (n === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  return undefined;
}

function hasUser(text: string, user: string): boolean {
  return text.split('\n').some((l) => l.startsWith(`${user}:`));
}

/**
 * /etc/shadow with each user's hash replaced and its last change set to 0, which makes the
 * user change the password at the first login (oVirt's adminpw= and rootpw= were temporary
 * passwords). Every other line and field is kept as it is.
 */
export function editShadow(shadow: string, passwd: string, hashes: ReadonlyMap<string, string>): string {
  for (const user of hashes.keys()) {
    if (!hasUser(passwd, user) || !hasUser(shadow, user)) {
      const missing = hasUser(passwd, user) ? '/etc/shadow' : '/etc/passwd';
      throw fail(
        `cannot set the password of "${user}": the image has no user "${user}" (not in ${missing})`,
        `the image must create the ${user} account; rebuild it with a profile that does`,
      );
    }
  }
  return shadow
    .split('\n')
    .map((line) => {
      const fields = line.split(':');
      const hash = hashes.get(fields[0] ?? '');
      if (hash === undefined || fields.length < 3) return line;
      fields[1] = hash;
      fields[2] = '0';
      return fields.join(':');
    })
    .join('\n');
}

// ---------------------------------------------------------------------------------------------
// Host name

const DEFAULT_HOSTS = [
  '127.0.0.1\tlocalhost',
  '',
  '# The following lines are desirable for IPv6 capable hosts',
  '::1     localhost ip6-localhost ip6-loopback',
  'ff02::1 ip6-allnodes',
  'ff02::2 ip6-allrouters',
];

/**
 * /etc/hosts naming this host on 127.0.1.1 (Debian's convention for a host without a fixed
 * address in DNS): the image's file with its 127.0.1.1 lines replaced, or Debian's default.
 */
export function hostsFile(hostname: string, image?: string): string {
  const short = hostname.split('.')[0] ?? hostname;
  const self = `127.0.1.1\t${short === hostname ? hostname : `${hostname} ${short}`}`;
  const firstField = (l: string) => l.trim().split(/\s+/)[0];
  const lines = (image ?? `${DEFAULT_HOSTS.join('\n')}\n`)
    .split('\n')
    .filter((l) => firstField(l) !== '127.0.1.1');
  let at = -1;
  lines.forEach((l, i) => {
    if (firstField(l) === '127.0.0.1') at = i;
  });
  if (at < 0) {
    lines.unshift('127.0.0.1\tlocalhost');
    at = 0;
  }
  lines.splice(at + 1, 0, self);
  const text = lines.join('\n');
  return text.endsWith('\n') ? text : `${text}\n`;
}

// ---------------------------------------------------------------------------------------------
// Network (systemd-networkd)

/** Contiguous dotted netmask → prefix length (the schema only admits contiguous ones). */
export function netmaskPrefix(netmask: string): number {
  return netmask
    .split('.')
    .map((o) => Number(o).toString(2).replace(/0/g, '').length)
    .reduce((a, b) => a + b, 0);
}

/** The classful prefix, which is what initscripts (oVirt's backend) used without NETMASK=. */
function classfulPrefix(address: string): number {
  const first = Number(address.split('.')[0]);
  return first < 128 ? 8 : first < 192 ? 16 : 24;
}

function bootifMatch(b: BootInterface | undefined): string[] {
  if (b && 'mac' in b) return ['Type=ether', `MACAddress=${b.mac}`];
  if (b && 'nic' in b) return [`Name=${b.nic}`];
  return ['Type=ether', 'Name=en* eth*'];
}

type BondValue = (v: string) => string | undefined;

const int =
  (min: number, max: number, unit = ''): BondValue =>
  (v) =>
    /^\d{1,10}$/.test(v) && Number(v) >= min && Number(v) <= max ? `${Number(v)}${unit}` : undefined;

/** Kernel names or their numbers (mode=4 is 802.3ad) → networkd's name. */
const oneOf =
  (...names: string[]): BondValue =>
  (v) =>
    names.includes(v) ? v : /^\d$/.test(v) ? names[Number(v)] : undefined;

const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/i;

/**
 * Bonding driver options (as modprobe and oVirt's bond= take them) → networkd's [Bond] keys.
 * primary= is a slave's PrimarySlave= and arp_ip_target= accumulates; both handled apart.
 */
const BOND_OPTIONS: Record<string, [key: string, value: BondValue]> = {
  mode: [
    'Mode',
    oneOf('balance-rr', 'active-backup', 'balance-xor', 'broadcast', '802.3ad', 'balance-tlb', 'balance-alb'),
  ],
  miimon: ['MIIMonitorSec', int(0, 2 ** 31 - 1, 'ms')],
  updelay: ['UpDelaySec', int(0, 2 ** 31 - 1, 'ms')],
  downdelay: ['DownDelaySec', int(0, 2 ** 31 - 1, 'ms')],
  arp_interval: ['ARPIntervalSec', int(0, 2 ** 31 - 1, 'ms')],
  lp_interval: ['LearnPacketIntervalSec', int(1, 2 ** 31 - 1, 's')],
  lacp_rate: ['LACPTransmitRate', oneOf('slow', 'fast')],
  xmit_hash_policy: ['TransmitHashPolicy', oneOf('layer2', 'layer3+4', 'layer2+3', 'encap2+3', 'encap3+4')],
  ad_select: ['AdSelect', oneOf('stable', 'bandwidth', 'count')],
  arp_validate: ['ARPValidate', oneOf('none', 'active', 'backup', 'all')],
  arp_all_targets: ['ARPAllTargets', oneOf('any', 'all')],
  primary_reselect: ['PrimaryReselectPolicy', oneOf('always', 'better', 'failure')],
  fail_over_mac: ['FailOverMACPolicy', oneOf('none', 'active', 'follow')],
  min_links: ['MinLinks', int(0, 2 ** 31 - 1)],
  num_grat_arp: ['GratuitousARP', int(0, 255)],
  num_unsol_na: ['GratuitousARP', int(0, 255)],
  resend_igmp: ['ResendIGMP', int(0, 255)],
  packets_per_slave: ['PacketsPerSlave', int(0, 65535)],
  all_slaves_active: ['AllSlavesActive', (v) => (v === '0' ? 'no' : v === '1' ? 'yes' : undefined)],
  ad_actor_sys_prio: ['AdActorSystemPriority', int(1, 65535)],
  ad_user_port_key: ['AdUserPortKey', int(0, 1023)],
  ad_actor_system: ['AdActorSystem', (v) => (MAC.test(v) ? v.toLowerCase() : undefined)],
};

export const BOND_OPTION_NAMES = [...Object.keys(BOND_OPTIONS), 'arp_ip_target', 'primary'].sort();

interface BondSettings {
  lines: string[];
  primary?: string;
}

function bondSettings(name: string, slaves: readonly string[], options: readonly string[]): BondSettings {
  const set = new Map<string, string>();
  const targets: string[] = [];
  let primary: string | undefined;
  for (const option of options) {
    const eq = option.indexOf('=');
    const key = option.slice(0, eq);
    const value = option.slice(eq + 1);
    const bad = (expected: string) =>
      fail(`bond ${name}: ${option}: expected ${expected}`, 'see the bonding driver documentation');
    if (key === 'primary') {
      if (!slaves.includes(value)) throw bad(`one of the slaves (${slaves.join(', ')})`);
      primary = value;
    } else if (key === 'arp_ip_target') {
      if (!isIPv4(value)) throw bad('an IPv4 address');
      targets.push(value);
    } else if (Object.hasOwn(BOND_OPTIONS, key)) {
      const [networkdKey, convert] = BOND_OPTIONS[key] as [string, BondValue];
      const converted = convert(value);
      if (converted === undefined) throw bad('a value the bonding driver takes');
      set.set(networkdKey, converted);
    } else {
      throw fail(
        `bond ${name}: the bonding option "${key}" is not supported`,
        `supported: ${BOND_OPTION_NAMES.join(', ')}`,
      );
    }
  }
  if (targets.length > 0) set.set('ARPIPTargets', targets.join(' '));
  return { lines: [...set].map(([k, v]) => `${k}=${v}`), primary };
}

function networkFiles(config: NodeConfig): SettingFile[] {
  const net = config.network;
  if (!net || !(net.bootif || net.ip || net.ipv6 || net.vlan || net.bond)) return [];
  const files: SettingFile[] = [];
  const { bond, vlan } = net;

  // The link the address goes on, and what it sits on.
  let addressMatch = bootifMatch(net.bootif);
  if (bond) {
    const settings = bondSettings(bond.name, bond.slaves, bond.options ?? []);
    files.push(
      file(`${NETWORK_DIR}/10-hvnode-${bond.name}.netdev`, [
        `${HEADER} (bond=)`,
        '[NetDev]',
        `Name=${bond.name}`,
        'Kind=bond',
        ...(settings.lines.length > 0 ? ['', '[Bond]', ...settings.lines] : []),
      ]),
    );
    const others = bond.slaves.filter((s) => s !== settings.primary);
    const slaveFile = (suffix: string, names: string[], extra: string[]) =>
      file(`${NETWORK_DIR}/10-hvnode-${bond.name}-${suffix}.network`, [
        `${HEADER} (bond=)`,
        '[Match]',
        `Name=${names.join(' ')}`,
        '',
        '[Network]',
        `Bond=${bond.name}`,
        ...extra,
      ]);
    if (others.length > 0) files.push(slaveFile('slaves', others, []));
    if (settings.primary) files.push(slaveFile('primary', [settings.primary], ['PrimarySlave=yes']));
    addressMatch = [`Name=${bond.name}`];
  }
  if (vlan) {
    if (vlan.nic && bond?.slaves.includes(vlan.nic)) {
      throw fail(
        `vlan=${vlan.id}:${vlan.nic}: ${vlan.nic} is a slave of the bond ${bond.name}`,
        `use vlan=${vlan.id}:${bond.name}`,
      );
    }
    // Not PARENT.ID: a parent matched by MAC has no known name, and names are at most 15 characters.
    const name = `vlan${vlan.id}`;
    files.push(
      file(`${NETWORK_DIR}/10-hvnode-${name}.netdev`, [
        `${HEADER} (vlan=)`,
        '[NetDev]',
        `Name=${name}`,
        'Kind=vlan',
        '',
        '[VLAN]',
        `Id=${vlan.id}`,
      ]),
    );
    const parentMatch = vlan.nic ? [`Name=${vlan.nic}`] : addressMatch;
    files.push(
      file(`${NETWORK_DIR}/10-hvnode-uplink.network`, [
        `${HEADER} (vlan=): the link below the VLAN carries no address of its own`,
        '[Match]',
        ...parentMatch,
        '',
        '[Network]',
        `VLAN=${name}`,
        'LinkLocalAddressing=no',
        'IPv6AcceptRA=no',
      ]),
    );
    addressMatch = [`Name=${name}`];
  }

  // oVirt brought the management NIC up with DHCP unless ip= said otherwise.
  const ip = net.ip ?? { mode: 'dhcp' };
  const v6 = net.ipv6;
  const network: string[] = [];
  const dhcp = [ip.mode === 'dhcp' && 'ipv4', v6?.mode === 'dhcp' && 'ipv6'].filter(Boolean);
  if (dhcp.length > 0) network.push(`DHCP=${dhcp.length === 2 ? 'yes' : dhcp[0]}`);
  if (ip.mode === 'static') {
    const prefix = ip.netmask ? netmaskPrefix(ip.netmask) : classfulPrefix(ip.address);
    network.push(`Address=${ip.address}/${prefix}`);
    if (ip.gateway) network.push(`Gateway=${ip.gateway}`);
  }
  if (v6?.mode === 'static') {
    network.push(`Address=${v6.address}/${v6.prefix ?? 64}`);
    if (v6.gateway) network.push(`Gateway=${v6.gateway}`);
    network.push('IPv6AcceptRA=no');
  } else if (v6) {
    network.push('IPv6AcceptRA=yes');
  } else if (ip.mode === 'off') {
    // Neither IPv4 nor IPv6 asked for: the link is up without addresses.
    network.push('LinkLocalAddressing=no', 'IPv6AcceptRA=no');
  }
  if (net.dns) network.push(`DNS=${net.dns.join(' ')}`);
  if (net.ntp) network.push(`NTP=${net.ntp.join(' ')}`);
  files.push(
    file(`${NETWORK_DIR}/10-hvnode.network`, [
      `${HEADER}: the management interface (BOOTIF=, ip=, ipv6=, dns=, ntp=)`,
      '[Match]',
      ...addressMatch,
      '',
      '[Network]',
      ...network,
      // Stateful DHCPv6 even when no router advertisement asks for it.
      ...(v6?.mode === 'dhcp' ? ['', '[DHCPv6]', 'WithoutRA=solicit'] : []),
    ]),
  );
  return files;
}

/** The interface name netconsole should send from, when the configuration names it. */
function managementInterface(config: NodeConfig): string | undefined {
  const net = config.network;
  if (net?.vlan) return `vlan${net.vlan.id}`;
  if (net?.bond) return net.bond.name;
  const b = net?.bootif;
  return b && 'nic' in b ? b.nic : undefined;
}

// ---------------------------------------------------------------------------------------------
// Services

/** `host:port`, with an IPv6 address in brackets. */
function hostPort(server: string, port: number): string {
  return `${isIPv6(server) ? `[${server}]` : server}:${port}`;
}

/** A value for a shell-sourced file (/etc/default/*), taken literally. */
function shellQuote(v: string): string {
  return `'${v.replace(/'/g, `'\\''`)}'`;
}

function netconsoleFiles(config: NodeConfig, e: Endpoint): SettingFile[] {
  // The kernel does no name lookup: netconsole= takes an address.
  if (!isIPv4(e.server) && !isIPv6(e.server)) {
    throw fail(
      `netconsole=${e.server}: netconsole needs the IP address of the log server, not a name`,
      'give netconsole=ADDRESS[:PORT]',
    );
  }
  // [src-port]@[src-ip]/[dev],tgt-port@tgt-ip/[tgt-mac]: the source address is the device's;
  // without a target MAC the kernel sends to the Ethernet broadcast address (same LAN only).
  const option = `@/${managementInterface(config) ?? ''},${e.port ?? 6666}@${e.server}/`;
  return [
    file('/etc/modprobe.d/hvnode-netconsole.conf', [
      `${HEADER} (netconsole=)`,
      `options netconsole netconsole=${option}`,
    ]),
    file('/etc/modules-load.d/hvnode-netconsole.conf', [`${HEADER} (netconsole=)`, 'netconsole']),
  ];
}

/**
 * The files that carry the settings of `config`, sorted by path; only what the config sets.
 * `image` holds the running image's files that are edited rather than replaced.
 */
export function settingsFiles(config: NodeConfig, image: ImageFiles): SettingFile[] {
  const files: SettingFile[] = [];
  const { security, logging, monitoring, kdump, iscsi, engine, network } = config;

  if (config.hostname) {
    files.push(file('/etc/hostname', [config.hostname]));
    files.push({ path: '/etc/hosts', content: hostsFile(config.hostname, image.hosts), mode: 0o644 });
  }

  const hashes = new Map<string, string>();
  if (security?.adminPasswordHash) hashes.set('admin', security.adminPasswordHash);
  if (security?.rootPasswordHash) hashes.set('root', security.rootPasswordHash);
  if (hashes.size > 0) {
    const gid = image.group === undefined ? undefined : groupId(image.group, 'shadow');
    // Readable by group shadow (unix_chkpwd, as Debian has it), by nobody else.
    files.push({
      path: '/etc/shadow',
      content: editShadow(image.shadow, image.passwd, hashes),
      ...(gid === undefined ? { mode: 0o600 } : { mode: 0o640, gid }),
    });
  }
  if (security?.sshPasswordAuth !== undefined) {
    files.push(
      file('/etc/ssh/sshd_config.d/hvnode.conf', [
        `${HEADER} (ssh_pwauth=)`,
        `PasswordAuthentication ${security.sshPasswordAuth ? 'yes' : 'no'}`,
      ]),
    );
  }

  files.push(...networkFiles(config));
  // Without systemd-resolved nothing turns networkd's DNS= into /etc/resolv.conf.
  if (network?.dns) {
    files.push(file('/etc/resolv.conf', [`${HEADER} (dns=)`, ...network.dns.map((a) => `nameserver ${a}`)]));
  }
  if (network?.ntp) {
    files.push(
      file('/etc/systemd/timesyncd.conf', [`${HEADER} (ntp=)`, '[Time]', `NTP=${network.ntp.join(' ')}`]),
    );
  }

  if (logging?.syslog) {
    const { server, port = 514 } = logging.syslog;
    files.push(
      file('/etc/rsyslog.d/50-hvnode-remote.conf', [
        `${HEADER} (syslog=): every message to the log server, over TCP`,
        `*.* @@${hostPort(server, port)}`,
      ]),
    );
  }
  if (logging?.netconsole) files.push(...netconsoleFiles(config, logging.netconsole));

  if (monitoring?.collectd) {
    const { server, port = 25826 } = monitoring.collectd;
    files.push(
      file('/etc/collectd/collectd.conf.d/hvnode.conf', [
        `${HEADER} (collectd=)`,
        'LoadPlugin network',
        '<Plugin network>',
        `  Server "${server}" "${port}"`,
        '</Plugin>',
      ]),
    );
  }

  if (kdump) {
    const target = 'nfs' in kdump ? `NFS=${shellQuote(kdump.nfs)}` : `SSH=${shellQuote(kdump.ssh)}`;
    files.push(
      file('/etc/default/kdump-tools', [
        `${HEADER} (${'nfs' in kdump ? 'kdump_nfs=' : 'kdump_ssh='}); read by kdump-config`,
        'USE_KDUMP=1',
        'KDUMP_COREDIR="/var/crash"',
        target,
      ]),
    );
  }

  if (iscsi?.initiatorName) {
    files.push(file('/etc/iscsi/initiatorname.iscsi', [`InitiatorName=${iscsi.initiatorName}`]));
  }

  // Read by the registration step.
  if (engine) {
    files.push({
      path: '/etc/hvnode/engine.json',
      content: `${JSON.stringify(engine, null, 2)}\n`,
      mode: 0o644,
    });
  }

  return files.sort((a, b) => comparePaths(a.path, b.path));
}

// ---------------------------------------------------------------------------------------------
// Writing into the config store

/** mkdir -p with mode 0755 whatever the umask; existing directories are left as they are. */
function makeDirs(root: string, rel: string): void {
  let at = root;
  for (const name of rel.split('/').filter(Boolean)) {
    at = join(at, name);
    try {
      if (statSync(at).isDirectory()) continue;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    mkdirSync(at, 0o755);
    chmodSync(at, 0o755);
  }
}

/** Replaces `final` atomically with a complete, fsynced file (persist's `.NAME.hvnode-new`). */
function writeAtomic(final: string, content: string, mode: number, gid?: number): void {
  const tmp = tempName(final, 'new');
  rmSync(tmp, { force: true });
  try {
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, content);
      // Not root only in tests: the files are then the caller's.
      if (process.getuid?.() === 0) fchownSync(fd, 0, gid ?? 0);
      fchmodSync(fd, mode);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, final);
    fsyncPath(dirname(final));
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * Writes every file at configRoot + path and adds the paths to configRoot/files (kept entries
 * stay; a path inside a persisted directory is already kept by it and is not listed). Refuses
 * the whole set, writing nothing, when a path is not absolute and normalized. Returns the paths.
 */
export function storeSettings(configRoot: string, files: readonly SettingFile[]): string[] {
  const seen = new Set<string>();
  for (const f of files) {
    if (!isValidListEntry(f.path)) {
      throw fail(
        `cannot store the setting file "${f.path}": not an absolute, normalized path`,
        'this is a bug in hvnode: please report it',
      );
    }
    if (seen.has(f.path)) throw fail(`the setting file ${f.path} is given twice`);
    seen.add(f.path);
  }
  const listFile = join(configRoot, 'files');
  let listed: string[] = [];
  try {
    listed = parseFilesList(readFileSync(listFile, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  for (const f of files) {
    makeDirs(configRoot, dirname(f.path));
    writeAtomic(join(configRoot, f.path), f.content, f.mode, f.gid);
  }
  // Files first, then the list: a run cut off in between leaves copies nothing restores.
  const added = files.map((f) => f.path).filter((p) => !listed.some((l) => l !== p && isUnder(p, l)));
  writeAtomic(listFile, formatFilesList(sortPaths([...listed, ...added])), 0o644);
  return files.map((f) => f.path);
}

/** The image's files that settingsFiles() edits, from the running system (or a tree at `root`). */
export function readImageFiles(root = '/'): ImageFiles {
  const read = (rel: string, required: boolean): string | undefined => {
    try {
      return readFileSync(join(root, rel), 'utf8');
    } catch (err) {
      if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw fail(`cannot read ${join(root, rel)}: ${(err as Error).message}`);
    }
  };
  const group = read('etc/group', false);
  const hosts = read('etc/hosts', false);
  return {
    shadow: read('etc/shadow', true) as string,
    passwd: read('etc/passwd', true) as string,
    ...(group === undefined ? {} : { group }),
    ...(hosts === undefined ? {} : { hosts }),
  };
}

// ---------------------------------------------------------------------------------------------
// At boot

const HOSTNAME = /^(?=.{1,64}$)[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/;

/**
 * The host name to give the running kernel after `persist --restore`: systemd set it from the
 * image's /etc/hostname before the persisted one was mounted over it. Undefined when the restore
 * did not bring /etc/hostname back now or the file names nothing; throws when it is unusable.
 * `readFile` reads a node path.
 */
export function hostnameToApply(
  result: Pick<RestoreResult, 'restored'>,
  readFile: (path: string) => string,
): string | undefined {
  if (!result.restored.includes('/etc/hostname')) return undefined;
  // hostname(5): the first line that is not a comment
  const name = readFile('/etc/hostname')
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l !== '' && !l.startsWith('#'));
  if (name === undefined) return undefined;
  if (!HOSTNAME.test(name)) {
    throw new Error(
      `/etc/hostname holds "${name}", which is not a host name the kernel takes (1-64 characters)`,
    );
  }
  return name;
}
