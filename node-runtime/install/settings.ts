// The "settings" stage of autoinstall: NodeConfig → the files that carry it, written into the new
// Config filesystem in persist's layout (the copy of /etc/hostname at CONFIGROOT/etc/hostname,
// every path listed in CONFIGROOT/files), so that `persist --restore` bind-mounts them over the
// live image's files at every boot. settingsFiles() decides the contents (pure); storeSettings()
// writes them through the config store (store/), under its lock.
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
// Keyboard: /etc/default/keyboard in console-setup's format (keyboard(5)), replacing the one the
// image builder wrote from the kickstart's `keyboard` command. Nothing in the image applies it to
// the Linux console at boot: console-setup, keyboard-configuration and kbd are not in the image
// (the profile doesn't list them; apt installs no Recommends). The installer runs loadkeys when
// the layout is chosen (tui/ui/run.ts), which needs kbd too. The file records the choice for the
// next boot and for other tools: systemd-localed reads its X11 layout from it on Debian, and
// console-setup would apply it if an image adds it.
//
// Logrotate size: logrotate is in the default image (libvirt-daemon-system depends on it; run
// daily by logrotate.timer). It reads global options only from its configuration files, but
// /etc/logrotate.conf includes /etc/logrotate.d, whose files it reads in name order, and a
// global option holds for every file read after it: a global `maxsize` in
// /etc/logrotate.d/00-hvnode-maxsize applies to the logs of the files after it (rsyslog,
// libvirtd, apt, dpkg, …); a log's own maxsize or size still wins. Checked with logrotate
// 3.21's debug output. An image without logrotate (the test profile) ignores the file.
//
// Not settings files (other stages use them): configServer, localBootTrigger, storage, boot,
// bootloaderArgs, iscsi.target/install/initDisk.

import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { join } from 'node:path';
import { HvError, Report } from '../../common/index.ts';
import { type NetworkdBond, networkdBond, vlanOnBondSlave } from '../config/rules.ts';
import type { BootInterface, Endpoint, NodeConfig } from '../config/schema.ts';
import type { RestoreResult } from '../persist.ts';
import { comparePaths, openStore, type StoredFile } from '../store/index.ts';

export interface SettingFile extends StoredFile {
  content: string;
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

/** Why the image cannot take a password for `user` (it lacks the account), or undefined. */
function missingAccount(
  image: Pick<ImageFiles, 'shadow' | 'passwd'>,
  user: string,
): { message: string; hint: string } | undefined {
  if (hasUser(image.passwd, user) && hasUser(image.shadow, user)) return undefined;
  const missing = hasUser(image.passwd, user) ? '/etc/shadow' : '/etc/passwd';
  return {
    message: `cannot set the password of "${user}": the image has no user "${user}" (not in ${missing})`,
    hint: `the image must create the ${user} account; rebuild it with a profile that does`,
  };
}

/** The accounts whose password hash NodeConfig sets, with the kernel argument that sets it. */
const PASSWORDS = [
  { user: 'admin', key: 'adminPasswordHash', arg: 'adminpw' },
  { user: 'root', key: 'rootPasswordHash', arg: 'rootpw' },
] as const;

function passwordHashes(config: NodeConfig): Map<string, string> {
  const hashes = new Map<string, string>();
  for (const { user, key } of PASSWORDS) {
    const hash = config.security?.[key];
    if (hash) hashes.set(user, hash);
  }
  return hashes;
}

/**
 * What the settings stage would refuse in this image, checked before anything is written: a
 * password for an account the image lacks (named by its argument, the hash not shown).
 */
export function checkImageSettings(config: NodeConfig, image: ImageFiles): Report {
  const report = new Report();
  for (const { user, key, arg } of PASSWORDS) {
    const missing = config.security?.[key] ? missingAccount(image, user) : undefined;
    if (missing) report.error(missing.message, { arg: `${arg}=(not shown)`, hint: missing.hint });
  }
  return report;
}

/**
 * /etc/shadow with each user's hash replaced and its last change set to `today` (days since
 * 1970). Every other line and field is kept as it is. Unlike oVirt's adminpw= and rootpw=, the
 * password is not a temporary one (last change 0, a change forced at the first login): here
 * /etc/shadow is persisted as a bind mount from /config, and passwd's PAM module writes a new
 * file and renames it over /etc/shadow, which a mount point refuses (EBUSY): the forced change
 * would fail and lock the account out. The setup TUI's Security screen changes passwords
 * through the /config store instead.
 */
export function editShadow(
  shadow: string,
  passwd: string,
  hashes: ReadonlyMap<string, string>,
  today = Math.floor(Date.now() / 86_400_000),
): string {
  for (const user of hashes.keys()) {
    const missing = missingAccount({ shadow, passwd }, user);
    if (missing) throw fail(missing.message, missing.hint);
  }
  return shadow
    .split('\n')
    .map((line) => {
      const fields = line.split(':');
      const hash = hashes.get(fields[0] ?? '');
      if (hash === undefined || fields.length < 3) return line;
      fields[1] = hash;
      fields[2] = String(today);
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

/** A bond as networkd takes it; its options were checked with the configuration (config/rules.ts). */
function bondSettings(bond: NonNullable<NonNullable<NodeConfig['network']>['bond']>): NetworkdBond {
  const settings = networkdBond(bond);
  const p = settings.problems[0];
  if (p) throw fail(`bond ${bond.name}: ${p.option}: ${p.message}`, p.hint);
  return settings;
}

function networkFiles(config: NodeConfig): SettingFile[] {
  const net = config.network;
  if (!net || !(net.bootif || net.ip || net.ipv6 || net.vlan || net.bond)) return [];
  const files: SettingFile[] = [];
  const { bond, vlan } = net;

  // The link the address goes on, and what it sits on.
  let addressMatch = bootifMatch(net.bootif);
  if (bond) {
    const settings = bondSettings(bond);
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
    const onSlave = vlanOnBondSlave(net);
    if (onSlave) throw fail(`vlan=${vlan.id}:${vlan.nic}: ${onSlave.message}`, onSlave.hint);
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

/** /etc/default/keyboard for `LAYOUT[-VARIANT]` (the schema's pattern: the layout has no `-`). */
export function keyboardFile(keyboard: string): SettingFile {
  const dash = keyboard.indexOf('-');
  const layout = dash < 0 ? keyboard : keyboard.slice(0, dash);
  const variant = dash < 0 ? '' : keyboard.slice(dash + 1);
  return file('/etc/default/keyboard', [
    `${HEADER} (keyboard=), in console-setup's format: see keyboard(5)`,
    '',
    'XKBMODEL="pc105"',
    `XKBLAYOUT="${layout}"`,
    `XKBVARIANT="${variant}"`,
    'XKBOPTIONS=""',
    '',
    'BACKSPACE="guess"',
  ]);
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
  if (config.keyboard) files.push(keyboardFile(config.keyboard));

  const hashes = passwordHashes(config);
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
  if (logging?.logrotateMaxSize !== undefined) {
    files.push(
      file('/etc/logrotate.d/00-hvnode-maxsize', [
        `${HEADER} (logrotate_max_size=)`,
        '# A global option: it holds for the files of /etc/logrotate.d read after this one.',
        `maxsize ${logging.logrotateMaxSize}k`,
      ]),
    );
  }

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

/**
 * Writes every file at configRoot + path and adds the paths to configRoot/files (kept entries
 * stay; a path inside a persisted directory is already kept by it and is not listed), holding
 * the store's lock. Refuses the whole set, writing nothing, when a path is not absolute and
 * normalized. Returns the paths.
 */
export async function storeSettings(configRoot: string, files: readonly SettingFile[]): Promise<string[]> {
  return openStore(configRoot).storeFiles(files);
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
