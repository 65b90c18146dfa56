// The setup screens (the admin's shell once installed) as view-models. Each screen shows part of
// the saved NodeConfig; `configOf` gives the saved config with that part replaced by what the
// screen holds, validated by NodeConfig's validator (its errors land on the fields), so that
// Apply writes through the same settings code as autoinstall. Reset goes back to `saved`.

import type { NicFact, NodeConfig } from '../../node-runtime/index.ts';
import { LOGROTATE_MAX_KB, validateNodeConfig } from '../../node-runtime/index.ts';
import { sha512Crypt } from '../crypt.ts';
import {
  applyChecks,
  button,
  checkPassword,
  checkPort,
  checkValue,
  choice,
  clearErrors,
  type Field,
  field,
  info,
  type Page,
  password,
  text,
  toggle,
  val,
} from './form.ts';

export interface StatusFacts {
  hostname: string;
  nics: NicFact[];
  vms?: string[];
  sshKeys: { type: string; fingerprint: string }[];
}

export interface SetupScreen {
  page: Page;
  /** Fills the fields from a saved config. */
  load(saved: NodeConfig): void;
  /** Field checks beyond the schema; sets errors; true when all pass. */
  check(): boolean;
  /** `saved` with this screen's part replaced (not validated yet). */
  merge(saved: NodeConfig): NodeConfig;
  /** JSON path prefix in NodeConfig → field id, for the validator's errors. */
  paths: [string, string][];
}

const str = (v: unknown) => (v === undefined || v === null ? '' : String(v));
const drop = <T extends object>(o: T): T | undefined => (Object.keys(o).length > 0 ? o : undefined);
const optPort = (v: string) => (v ? { port: Number(v) } : {});

/** `config` with key replaced (removed when undefined). */
function withKey<K extends keyof NodeConfig>(
  config: NodeConfig,
  key: K,
  value: NodeConfig[K] | undefined,
): NodeConfig {
  const next = { ...config };
  if (value === undefined) delete next[key];
  else next[key] = value;
  return next;
}

function endpointFields(prefix: string, label: string, portNote: string): Field[] {
  return [text(`${prefix}Server`, `${label} server`), text(`${prefix}Port`, `${label} port`, '', portNote)];
}

function endpointOf(page: Page, prefix: string) {
  const server = val(page, `${prefix}Server`);
  return server ? { server, ...optPort(val(page, `${prefix}Port`)) } : undefined;
}

function checkEndpoint(page: Page, prefix: string, pattern: 'host' | 'ipAddress' = 'host') {
  const port = val(page, `${prefix}Port`);
  return {
    [`${prefix}Server`]: checkValue(val(page, `${prefix}Server`), pattern, port !== ''),
    [`${prefix}Port`]: checkPort(port),
  };
}

function loadEndpoint(page: Page, prefix: string, e: { server: string; port?: number } | undefined) {
  field(page, `${prefix}Server`).value = str(e?.server);
  field(page, `${prefix}Port`).value = str(e?.port);
}

const actions = (): Field[] => [button('apply', 'Apply'), button('reset', 'Reset')];

export function statusScreen(facts: StatusFacts, engineState: string): Page {
  const mgmt = facts.nics.find((n) => n.addresses.length > 0) ?? facts.nics[0];
  return {
    id: 'status',
    title: 'Status',
    fields: [
      info('hostname', 'Hostname', facts.hostname),
      info(
        'nic',
        'Management NIC',
        mgmt ? `${mgmt.name} ${mgmt.mac} ${mgmt.addresses[0] ?? '(no address)'}` : '(none)',
      ),
      info(
        'vms',
        'Running VMs',
        facts.vms === undefined
          ? 'libvirt is not running'
          : facts.vms.length === 0
            ? 'none'
            : facts.vms.join(', '),
      ),
      info('engine', 'Engine', engineState),
      ...facts.sshKeys.map((k, i) =>
        info(`key${i}`, `SSH host key`, `${k.type.replace(/^ssh-/, '')} ${k.fingerprint}`),
      ),
      button('lock', 'Lock'),
      button('restart', 'Restart'),
      button('poweroff', 'Power off'),
    ],
  };
}

export function networkScreen(nics: NicFact[]): SetupScreen {
  const page: Page = {
    id: 'network',
    title: 'Network',
    fields: [
      text('hostname', 'Hostname'),
      text('dns1', 'DNS server 1'),
      text('dns2', 'DNS server 2'),
      text('ntp1', 'NTP server 1'),
      text('ntp2', 'NTP server 2'),
      {
        id: 'nic',
        label: 'Management NIC',
        kind: 'list',
        header: `${'Device'.padEnd(10)} ${'Status'.padEnd(8)} ${'MAC'.padEnd(17)} Address`,
        options: nics.map((n) => ({
          value: n.name,
          label: `${n.name.padEnd(10)} ${n.state.slice(0, 8).padEnd(8)} ${n.mac.padEnd(17)} ${n.addresses[0] ?? ''}`,
        })),
        value: nics[0]?.name ?? '',
        cursor: 0,
      },
      choice('proto', 'IPv4', [
        { value: 'dhcp', label: 'DHCP' },
        { value: 'static', label: 'Static' },
        { value: 'off', label: 'Disabled' },
      ]),
      { ...text('ip', 'IP address'), visible: () => val(page, 'proto') === 'static' },
      { ...text('netmask', 'Netmask'), visible: () => val(page, 'proto') === 'static' },
      { ...text('gateway', 'Gateway'), visible: () => val(page, 'proto') === 'static' },
      text('vlan', 'VLAN ID', '', '1-4094, empty: none'),
      text('ping', 'Ping host'),
      button('doping', 'Ping'),
      ...actions(),
    ],
    output: [],
  };
  return {
    page,
    paths: [
      ['/hostname', 'hostname'],
      ['/network/dns/1', 'dns2'],
      ['/network/dns', 'dns1'],
      ['/network/ntp/1', 'ntp2'],
      ['/network/ntp', 'ntp1'],
      ['/network/ip/netmask', 'netmask'],
      ['/network/ip/gateway', 'gateway'],
      ['/network/ip', 'ip'],
      ['/network/vlan', 'vlan'],
      ['/network/bootif', 'nic'],
      ['/network', 'nic'],
    ],
    load(saved) {
      const n = saved.network;
      field(page, 'hostname').value = str(saved.hostname);
      field(page, 'dns1').value = str(n?.dns?.[0]);
      field(page, 'dns2').value = str(n?.dns?.[1]);
      field(page, 'ntp1').value = str(n?.ntp?.[0]);
      field(page, 'ntp2').value = str(n?.ntp?.[1]);
      const nic = n?.bootif && 'nic' in n.bootif ? n.bootif.nic : undefined;
      const f = field(page, 'nic');
      if (nic) {
        f.value = nic;
        f.cursor = Math.max(0, f.options?.findIndex((o) => o.value === nic) ?? 0);
      }
      const ip = n?.ip;
      field(page, 'proto').value = ip?.mode ?? 'dhcp';
      field(page, 'ip').value = ip?.mode === 'static' ? ip.address : '';
      field(page, 'netmask').value = ip?.mode === 'static' ? str(ip.netmask) : '';
      field(page, 'gateway').value = ip?.mode === 'static' ? str(ip.gateway) : '';
      field(page, 'vlan').value = str(n?.vlan?.id);
    },
    check() {
      clearErrors(page);
      const proto = val(page, 'proto');
      const vlan = val(page, 'vlan');
      return applyChecks(page, {
        hostname: checkValue(val(page, 'hostname'), 'hostname'),
        dns1: checkValue(val(page, 'dns1'), 'ipAddress', val(page, 'dns2') !== ''),
        dns2: checkValue(val(page, 'dns2'), 'ipAddress'),
        ntp1: checkValue(val(page, 'ntp1'), 'host', val(page, 'ntp2') !== ''),
        ntp2: checkValue(val(page, 'ntp2'), 'host'),
        ip: proto === 'static' ? checkValue(val(page, 'ip'), 'ipv4', true) : undefined,
        netmask: proto === 'static' ? checkValue(val(page, 'netmask'), 'netmask') : undefined,
        gateway: proto === 'static' ? checkValue(val(page, 'gateway'), 'ipv4') : undefined,
        vlan:
          vlan === '' || (/^\d+$/.test(vlan) && +vlan >= 1 && +vlan <= 4094)
            ? undefined
            : 'a VLAN ID is 1-4094',
        nic: page.fields.find((f) => f.id === 'nic')?.options?.length ? undefined : 'this machine has no NIC',
      });
    },
    merge(saved) {
      const proto = val(page, 'proto');
      const list = (...ids: string[]) => ids.map((id) => val(page, id)).filter(Boolean);
      const dns = list('dns1', 'dns2');
      const ntp = list('ntp1', 'ntp2');
      const vlan = val(page, 'vlan');
      const nic = val(page, 'nic');
      const { bootif: _b, ip: _i, dns: _d, ntp: _n, vlan: _v, ...keep } = saved.network ?? {};
      const network = drop({
        ...keep,
        ...(nic ? { bootif: { nic } } : {}),
        ip:
          proto === 'static'
            ? {
                mode: 'static' as const,
                address: val(page, 'ip'),
                ...(val(page, 'netmask') ? { netmask: val(page, 'netmask') } : {}),
                ...(val(page, 'gateway') ? { gateway: val(page, 'gateway') } : {}),
              }
            : { mode: proto as 'dhcp' | 'off' },
        ...(dns.length ? { dns } : {}),
        ...(ntp.length ? { ntp } : {}),
        ...(vlan ? { vlan: { id: Number(vlan) } } : {}),
      });
      return withKey(withKey(saved, 'hostname', val(page, 'hostname') || undefined), 'network', network);
    },
  };
}

export function securityScreen(salt?: string): SetupScreen {
  const page: Page = {
    id: 'security',
    title: 'Security',
    fields: [
      toggle('sshpw', 'Enable ssh password authentication', false),
      password('password', 'Admin password'),
      password('confirm', 'Confirm password'),
      ...actions(),
    ],
  };
  return {
    page,
    paths: [['/security', 'password']],
    load(saved) {
      field(page, 'sshpw').value = saved.security?.sshPasswordAuth ? 'yes' : 'no';
      field(page, 'password').value = '';
      field(page, 'confirm').value = '';
    },
    check() {
      clearErrors(page);
      return applyChecks(page, checkPassword(field(page, 'password').value, field(page, 'confirm').value));
    },
    merge(saved) {
      const pw = field(page, 'password').value;
      return withKey(saved, 'security', {
        ...saved.security,
        sshPasswordAuth: val(page, 'sshpw') === 'yes',
        ...(pw ? { adminPasswordHash: sha512Crypt(pw, salt) } : {}),
      });
    },
  };
}

export function loggingScreen(): SetupScreen {
  const page: Page = {
    id: 'logging',
    title: 'Logging',
    fields: [
      text('logrotate', 'Logrotate max size', '', "KB, e.g. 1024; empty: logrotate's own"),
      ...endpointFields('syslog', 'rsyslog', 'default 514'),
      ...endpointFields('netconsole', 'netconsole', 'default 6666'),
      ...actions(),
    ],
  };
  return {
    page,
    paths: [
      ['/logging/logrotateMaxSize', 'logrotate'],
      ['/logging/syslog/port', 'syslogPort'],
      ['/logging/syslog', 'syslogServer'],
      ['/logging/netconsole/port', 'netconsolePort'],
      ['/logging/netconsole', 'netconsoleServer'],
    ],
    load(saved) {
      field(page, 'logrotate').value = str(saved.logging?.logrotateMaxSize);
      loadEndpoint(page, 'syslog', saved.logging?.syslog);
      loadEndpoint(page, 'netconsole', saved.logging?.netconsole);
    },
    check() {
      clearErrors(page);
      const size = val(page, 'logrotate');
      return applyChecks(page, {
        logrotate:
          size === '' || (/^\d+$/.test(size) && +size >= 1 && +size <= LOGROTATE_MAX_KB)
            ? undefined
            : `a size in KB, 1-${LOGROTATE_MAX_KB}`,
        ...checkEndpoint(page, 'syslog'),
        // the kernel does no name lookup: an address only
        ...checkEndpoint(page, 'netconsole', 'ipAddress'),
      });
    },
    merge(saved) {
      const syslog = endpointOf(page, 'syslog');
      const netconsole = endpointOf(page, 'netconsole');
      const size = val(page, 'logrotate');
      return withKey(
        saved,
        'logging',
        drop({
          ...(syslog ? { syslog } : {}),
          ...(netconsole ? { netconsole } : {}),
          ...(size ? { logrotateMaxSize: Number(size) } : {}),
        }),
      );
    },
  };
}

export function kdumpScreen(): SetupScreen {
  const page: Page = {
    id: 'kdump',
    title: 'Kernel Dump',
    fields: [
      choice('type', 'Dump to', [
        { value: 'local', label: 'Local (/var/crash)' },
        { value: 'nfs', label: 'NFS' },
        { value: 'ssh', label: 'SSH' },
      ]),
      {
        ...text('nfs', 'NFS location', '', 'example.com:/var/crash'),
        visible: () => val(page, 'type') === 'nfs',
      },
      { ...text('ssh', 'SSH location', '', 'root@example.com'), visible: () => val(page, 'type') === 'ssh' },
      ...actions(),
    ],
  };
  return {
    page,
    paths: [
      ['/kdump/nfs', 'nfs'],
      ['/kdump/ssh', 'ssh'],
      ['/kdump', 'type'],
    ],
    load(saved) {
      const k = saved.kdump;
      field(page, 'type').value = k ? ('nfs' in k ? 'nfs' : 'ssh') : 'local';
      field(page, 'nfs').value = k && 'nfs' in k ? k.nfs : '';
      field(page, 'ssh').value = k && 'ssh' in k ? k.ssh : '';
    },
    check() {
      clearErrors(page);
      const type = val(page, 'type');
      return applyChecks(page, {
        nfs: type === 'nfs' ? checkValue(val(page, 'nfs'), 'nfsTarget', true) : undefined,
        ssh: type === 'ssh' ? checkValue(val(page, 'ssh'), 'sshTarget', true) : undefined,
      });
    },
    merge(saved) {
      const type = val(page, 'type');
      const kdump =
        type === 'nfs' ? { nfs: val(page, 'nfs') } : type === 'ssh' ? { ssh: val(page, 'ssh') } : undefined;
      return withKey(saved, 'kdump', kdump);
    },
  };
}

export function iscsiScreen(): SetupScreen {
  const page: Page = {
    id: 'iscsi',
    title: 'Remote Storage',
    fields: [text('initiator', 'iSCSI initiator name', '', 'iqn.YYYY-MM.domain:id'), ...actions()],
  };
  return {
    page,
    paths: [['/iscsi', 'initiator']],
    load(saved) {
      field(page, 'initiator').value = str(saved.iscsi?.initiatorName);
    },
    check() {
      clearErrors(page);
      return applyChecks(page, { initiator: checkValue(val(page, 'initiator'), 'iscsiName') });
    },
    merge(saved) {
      const { initiatorName: _, ...keep } = saved.iscsi ?? {};
      const name = val(page, 'initiator');
      return withKey(saved, 'iscsi', drop({ ...keep, ...(name ? { initiatorName: name } : {}) }));
    },
  };
}

export function monitoringScreen(): SetupScreen {
  const page: Page = {
    id: 'monitoring',
    title: 'Monitoring',
    fields: [...endpointFields('collectd', 'collectd', 'default 25826'), ...actions()],
  };
  return {
    page,
    paths: [
      ['/monitoring/collectd/port', 'collectdPort'],
      ['/monitoring', 'collectdServer'],
    ],
    load(saved) {
      loadEndpoint(page, 'collectd', saved.monitoring?.collectd);
    },
    check() {
      clearErrors(page);
      return applyChecks(page, checkEndpoint(page, 'collectd'));
    },
    merge(saved) {
      const collectd = endpointOf(page, 'collectd');
      return withKey(saved, 'monitoring', collectd ? { collectd } : undefined);
    },
  };
}

export function engineScreen(): SetupScreen {
  const page: Page = {
    id: 'engine',
    title: 'Engine',
    fields: [
      text('server', 'Engine server'),
      text('port', 'Port', '443'),
      button('fetch', 'Fetch CA fingerprint'),
      info('fingerprint', 'CA fingerprint', ''),
      button('accept', 'Accept'),
      button('reject', 'Reject'),
      button('apply', 'Apply and register'),
      button('reset', 'Reset'),
    ],
    output: [],
  };
  return {
    page,
    paths: [
      ['/engine/port', 'port'],
      ['/engine/fingerprint', 'fingerprint'],
      ['/engine', 'server'],
    ],
    load(saved) {
      field(page, 'server').value = str(saved.engine?.server);
      field(page, 'port').value = str(saved.engine?.port ?? 443);
      field(page, 'fingerprint').value = str(saved.engine?.fingerprint);
    },
    check() {
      clearErrors(page);
      return applyChecks(page, {
        server: checkValue(val(page, 'server'), 'host'),
        port: checkPort(val(page, 'port')),
      });
    },
    merge(saved) {
      const server = val(page, 'server');
      const fp = val(page, 'fingerprint');
      return withKey(
        saved,
        'engine',
        server ? { server, ...optPort(val(page, 'port')), ...(fp ? { fingerprint: fp } : {}) } : undefined,
      );
    },
  };
}

export function configServerScreen(): SetupScreen {
  const page: Page = {
    id: 'configserver',
    title: 'Config server',
    fields: [
      text('url', 'Config server URL', '', 'https://...'),
      button('upload', 'Upload current config'),
      ...actions(),
    ],
    output: [],
  };
  return {
    page,
    paths: [['/configServer', 'url']],
    load(saved) {
      field(page, 'url').value = str(saved.configServer?.url);
    },
    check() {
      clearErrors(page);
      return applyChecks(page, { url: checkValue(val(page, 'url'), 'url') });
    },
    merge(saved) {
      const { url: _, ...keep } = saved.configServer ?? {};
      const url = val(page, 'url');
      return withKey(saved, 'configServer', drop({ ...keep, ...(url ? { url } : {}) }));
    },
  };
}

/**
 * The screen's config for Apply: its own checks, then NodeConfig's validator over the whole
 * merged config (errors on the field their JSON path belongs to). Undefined when it fails.
 */
export function configOf(screen: SetupScreen, saved: NodeConfig): NodeConfig | undefined {
  if (!screen.check()) return undefined;
  const next = screen.merge(saved);
  const report = validateNodeConfig(next);
  if (!report.hasErrors) return next;
  for (const d of report.errors) {
    const path = d.path ?? '/';
    const id = screen.paths.find(([prefix]) => path === prefix || path.startsWith(`${prefix}/`))?.[1];
    const f = page(screen, id ?? screen.page.fields[0]?.id ?? '');
    f.error ??= d.message.replace(/^\S+ /, '');
  }
  return undefined;
}

const page = (screen: SetupScreen, id: string) => field(screen.page, id);

export function setupScreens(nics: NicFact[], salt?: string): SetupScreen[] {
  return [
    networkScreen(nics),
    securityScreen(salt),
    loggingScreen(),
    kdumpScreen(),
    iscsiScreen(),
    monitoringScreen(),
    engineScreen(),
    configServerScreen(),
  ];
}
