// The settings stage of autoinstall: NodeConfig → the files in the config store (pure), and their
// writing in persist's layout (in a temporary directory).

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import test from 'ava';
import { HvError } from '../../common/index.ts';
import { type NodeConfig, parseCmdline } from '../../node-runtime/config/index.ts';
import {
  hostnameToApply,
  hostsFile,
  type ImageFiles,
  netmaskPrefix,
  readImageFiles,
  type SettingFile,
  settingsFiles,
  storeSettings,
} from '../../node-runtime/install/settings.ts';

const HASH = `$6$salt$${'a'.repeat(86)}`;
const ROOT_HASH = `$6$other$${'b'.repeat(86)}`;

const PASSWD = [
  'root:x:0:0:root:/root:/bin/bash',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  'admin:x:1000:1000::/home/admin:/bin/bash',
  '',
].join('\n');
const SHADOW = [
  'root:*:19700:0:99999:7:::',
  'daemon:*:19700:0:99999:7:::',
  'admin:!:19701:0:99999:7:::',
  '',
].join('\n');
const GROUP = 'root:x:0:\nshadow:x:42:\nadmin:x:1000:\n';
const IMAGE: ImageFiles = { shadow: SHADOW, passwd: PASSWD, group: GROUP };

function scratch(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-settings-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function fromCmdline(t: ExecutionContext, cmdline: string): NodeConfig {
  const r = parseCmdline(cmdline);
  t.deepEqual(r.errors, []);
  return r.config;
}

function byPath(files: SettingFile[]): Record<string, SettingFile> {
  return Object.fromEntries(files.map((f) => [f.path, f]));
}

function content(files: SettingFile[], path: string): string {
  const f = files.find((x) => x.path === path);
  if (!f) throw new Error(`no ${path} among ${files.map((x) => x.path).join(', ')}`);
  return f.content;
}

/** The lines that are not comments. */
function body(text: string): string[] {
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

// ---------------------------------------------------------------------------------------------
// settingsFiles

test('an oVirt command line becomes the files of its settings, sorted by path', (t) => {
  const config = fromCmdline(
    t,
    `hostname=node1.example.com adminpw=${HASH} ip=10.0.0.5 netmask=255.255.255.0 gateway=10.0.0.1 dns=10.0.0.2,10.0.0.3 ntp=pool.example.org ssh_pwauth=1 syslog=logs.example.com:514`,
  );
  const files = settingsFiles(config, IMAGE);
  t.deepEqual(
    files.map((f) => f.path),
    [
      '/etc/hostname',
      '/etc/hosts',
      '/etc/resolv.conf',
      '/etc/rsyslog.d/50-hvnode-remote.conf',
      '/etc/shadow',
      '/etc/ssh/sshd_config.d/hvnode.conf',
      '/etc/systemd/network/10-hvnode.network',
      '/etc/systemd/timesyncd.conf',
    ],
  );
  t.is(content(files, '/etc/hostname'), 'node1.example.com\n');
  t.true(content(files, '/etc/hosts').includes('\n127.0.1.1\tnode1.example.com node1\n'));
  t.deepEqual(body(content(files, '/etc/systemd/network/10-hvnode.network')), [
    '[Match]',
    'Type=ether',
    'Name=en* eth*',
    '[Network]',
    'Address=10.0.0.5/24',
    'Gateway=10.0.0.1',
    'DNS=10.0.0.2 10.0.0.3',
    'NTP=pool.example.org',
  ]);
  t.deepEqual(body(content(files, '/etc/resolv.conf')), ['nameserver 10.0.0.2', 'nameserver 10.0.0.3']);
  t.deepEqual(body(content(files, '/etc/systemd/timesyncd.conf')), ['[Time]', 'NTP=pool.example.org']);
  t.deepEqual(body(content(files, '/etc/ssh/sshd_config.d/hvnode.conf')), ['PasswordAuthentication yes']);
  t.deepEqual(body(content(files, '/etc/rsyslog.d/50-hvnode-remote.conf')), ['*.* @@logs.example.com:514']);
  // the password is set as given, not expired (last change today, not 0: a forced change
  // cannot rename over the bind-mounted /etc/shadow)
  const lastChange = new RegExp(`\\nadmin:${HASH.replace(/\$/g, '\\$')}:(\\d+):0:99999:7:::\\n`).exec(
    content(files, '/etc/shadow'),
  )?.[1];
  t.true(Math.abs(Number(lastChange) - Date.now() / 86_400_000) < 2, `last change ${lastChange}`);
  const modes = byPath(files);
  t.is(modes['/etc/shadow']?.mode, 0o640);
  t.is(modes['/etc/shadow']?.gid, 42);
  t.is(modes['/etc/hostname']?.mode, 0o644);
});

test('nothing set, nothing written; boot and storage settings are not files', (t) => {
  t.deepEqual(settingsFiles({}, IMAGE), []);
  const config = fromCmdline(
    t,
    'install storage_init=/dev/sda stateless=0 local_boot_trigger=http://foreman/x config_server=https://c.example.com/ crashkernel=256M',
  );
  t.deepEqual(settingsFiles(config, IMAGE), []);
});

test('shadow: admin and root hashes replaced, last change today, every other line byte-identical', (t) => {
  const shadow = `root:*:19700:0:99999:7:::\nweird line without colons\r\nadmin:!:19701:0:99999:7:::\nzed:$1$x$y:1:2:3:4:5:6:\n`;
  const passwd = `${PASSWD}zed:x:1001:1001::/home/zed:/bin/sh\n`;
  const files = settingsFiles(
    { security: { adminPasswordHash: HASH, rootPasswordHash: ROOT_HASH } },
    { shadow, passwd },
  );
  t.deepEqual(
    files.map((f) => f.path),
    ['/etc/shadow'],
  );
  const got = content(files, '/etc/shadow');
  const day = /^root:[^:]*:(\d+):/.exec(got)?.[1] ?? '';
  t.true(Math.abs(Number(day) - Date.now() / 86_400_000) < 2, `last change ${day}`);
  t.is(
    got,
    `root:${ROOT_HASH}:${day}:0:99999:7:::\nweird line without colons\r\nadmin:${HASH}:${day}:0:99999:7:::\nzed:$1$x$y:1:2:3:4:5:6:\n`,
  );
  // no group file: nobody but root reads it
  t.is(files[0]?.mode, 0o600);
  t.is(files[0]?.gid, undefined);
});

test('a password for a user the image lacks is an error that names the user', (t) => {
  const noAdmin = { shadow: 'root:*:1:0:99999:7:::\n', passwd: 'root:x:0:0:root:/root:/bin/bash\n' };
  const err = t.throws(() => settingsFiles({ security: { adminPasswordHash: HASH } }, noAdmin), {
    instanceOf: HvError,
  });
  t.regex(err.message, /"admin"/);
  t.regex(err.message, /image has no user/);
  t.is((err as HvError).where, 'hvnode-node autoinstall');
  // in passwd but not in shadow: still refused, and shadow is named
  const noShadow = { shadow: 'root:*:1:0:99999:7:::\n', passwd: PASSWD };
  const err2 = t.throws(() => settingsFiles({ security: { adminPasswordHash: HASH } }, noShadow));
  t.regex(err2.message, /admin.*\/etc\/shadow/);
  // a user whose name is a prefix of another is not confused with it
  const prefix = { shadow: 'administrator:*:1:0:99999:7:::\n', passwd: 'administrator:x:5:5::/:/bin/sh\n' };
  t.throws(() => settingsFiles({ security: { adminPasswordHash: HASH } }, prefix), { message: /"admin"/ });
});

test('hosts: a short name, and the image file with its 127.0.1.1 line replaced', (t) => {
  const files = settingsFiles({ hostname: 'node7' }, IMAGE);
  t.is(content(files, '/etc/hostname'), 'node7\n');
  const hosts = content(files, '/etc/hosts');
  t.true(hosts.startsWith('127.0.0.1\tlocalhost\n127.0.1.1\tnode7\n'));
  t.true(hosts.includes('::1     localhost ip6-localhost ip6-loopback\n'));

  const image = '127.0.0.1 localhost\n127.0.1.1 debian\n10.1.1.1 nas\n';
  t.is(hostsFile('n.example.com', image), '127.0.0.1 localhost\n127.0.1.1\tn.example.com n\n10.1.1.1 nas\n');
  t.is(hostsFile('n', '10.1.1.1 nas'), '127.0.0.1\tlocalhost\n127.0.1.1\tn\n10.1.1.1 nas\n');
});

test('netmask to prefix length', (t) => {
  t.is(netmaskPrefix('255.255.255.0'), 24);
  t.is(netmaskPrefix('255.255.252.0'), 22);
  t.is(netmaskPrefix('255.0.0.0'), 8);
  t.is(netmaskPrefix('255.255.255.255'), 32);
  t.is(netmaskPrefix('128.0.0.0'), 1);
});

test('network: BOOTIF by MAC with DHCP, and IPv6 modes', (t) => {
  const config = fromCmdline(t, 'BOOTIF=01-52-54-00-12-34-56 ip=dhcp ipv6=dhcp');
  t.deepEqual(body(content(settingsFiles(config, IMAGE), '/etc/systemd/network/10-hvnode.network')), [
    '[Match]',
    'Type=ether',
    'MACAddress=52:54:00:12:34:56',
    '[Network]',
    'DHCP=yes',
    'IPv6AcceptRA=yes',
    '[DHCPv6]',
    'WithoutRA=solicit',
  ]);
  // no ip= means DHCP, as in oVirt; a static IPv6 address with the default prefix
  const v6 = fromCmdline(t, 'BOOTIF=eno1 ipv6=2001:db8::5 ipv6_gateway=2001:db8::1');
  t.deepEqual(body(content(settingsFiles(v6, IMAGE), '/etc/systemd/network/10-hvnode.network')), [
    '[Match]',
    'Name=eno1',
    '[Network]',
    'DHCP=ipv4',
    'Address=2001:db8::5/64',
    'Gateway=2001:db8::1',
    'IPv6AcceptRA=no',
  ]);
  const auto = fromCmdline(t, 'ip=10.1.2.3 ipv6=auto');
  t.deepEqual(body(content(settingsFiles(auto, IMAGE), '/etc/systemd/network/10-hvnode.network')).slice(3), [
    '[Network]',
    'Address=10.1.2.3/8', // no netmask: classful, as initscripts did
    'IPv6AcceptRA=yes',
  ]);
  const off = fromCmdline(t, 'BOOTIF=link ip=off');
  t.deepEqual(body(content(settingsFiles(off, IMAGE), '/etc/systemd/network/10-hvnode.network')).slice(3), [
    '[Network]',
    'LinkLocalAddressing=no',
    'IPv6AcceptRA=no',
  ]);
  // dns and ntp alone configure no interface
  t.deepEqual(
    settingsFiles(fromCmdline(t, 'dns=10.0.0.2'), IMAGE).map((f) => f.path),
    ['/etc/resolv.conf'],
  );
});

test('network: a bond with options, and a VLAN on it', (t) => {
  const config = fromCmdline(
    t,
    'bond=bond0:eth0,eth1:mode=802.3ad,miimon=100,lacp_rate=1,xmit_hash_policy=layer3+4 vlan=20:bond0 ip=10.0.0.5:10.0.0.9:10.0.0.1:255.255.0.0',
  );
  const files = settingsFiles(config, IMAGE);
  const dir = '/etc/systemd/network';
  t.deepEqual(
    files.map((f) => f.path),
    [
      `${dir}/10-hvnode-bond0-slaves.network`,
      `${dir}/10-hvnode-bond0.netdev`,
      `${dir}/10-hvnode-uplink.network`,
      `${dir}/10-hvnode-vlan20.netdev`,
      `${dir}/10-hvnode.network`,
    ],
  );
  t.deepEqual(body(content(files, `${dir}/10-hvnode-bond0.netdev`)), [
    '[NetDev]',
    'Name=bond0',
    'Kind=bond',
    '[Bond]',
    'Mode=802.3ad',
    'MIIMonitorSec=100ms',
    'LACPTransmitRate=fast',
    'TransmitHashPolicy=layer3+4',
  ]);
  t.deepEqual(body(content(files, `${dir}/10-hvnode-bond0-slaves.network`)), [
    '[Match]',
    'Name=eth0 eth1',
    '[Network]',
    'Bond=bond0',
  ]);
  t.deepEqual(body(content(files, `${dir}/10-hvnode-vlan20.netdev`)), [
    '[NetDev]',
    'Name=vlan20',
    'Kind=vlan',
    '[VLAN]',
    'Id=20',
  ]);
  t.deepEqual(body(content(files, `${dir}/10-hvnode-uplink.network`)), [
    '[Match]',
    'Name=bond0',
    '[Network]',
    'VLAN=vlan20',
    'LinkLocalAddressing=no',
    'IPv6AcceptRA=no',
  ]);
  t.deepEqual(body(content(files, `${dir}/10-hvnode.network`)), [
    '[Match]',
    'Name=vlan20',
    '[Network]',
    'Address=10.0.0.5/16',
    'Gateway=10.0.0.1',
  ]);
});

test('network: a VLAN on the BOOTIF NIC, a bond with a primary slave and numeric mode', (t) => {
  const vlan = settingsFiles(fromCmdline(t, 'BOOTIF=01-52-54-00-12-34-56 vlan=7'), IMAGE);
  t.deepEqual(body(content(vlan, '/etc/systemd/network/10-hvnode-uplink.network')).slice(0, 3), [
    '[Match]',
    'Type=ether',
    'MACAddress=52:54:00:12:34:56',
  ]);
  t.deepEqual(body(content(vlan, '/etc/systemd/network/10-hvnode.network')), [
    '[Match]',
    'Name=vlan7',
    '[Network]',
    'DHCP=ipv4',
  ]);

  const bond = settingsFiles(
    fromCmdline(
      t,
      'bond=bond1:eth0,eth1,eth2:mode=1,primary=eth1,arp_interval=200,arp_ip_target=10.0.0.1,arp_ip_target=10.0.0.2',
    ),
    IMAGE,
  );
  t.deepEqual(body(content(bond, '/etc/systemd/network/10-hvnode-bond1.netdev')).slice(3), [
    '[Bond]',
    'Mode=active-backup',
    'ARPIntervalSec=200ms',
    'ARPIPTargets=10.0.0.1 10.0.0.2',
  ]);
  t.deepEqual(body(content(bond, '/etc/systemd/network/10-hvnode-bond1-slaves.network')).slice(0, 2), [
    '[Match]',
    'Name=eth0 eth2',
  ]);
  t.deepEqual(body(content(bond, '/etc/systemd/network/10-hvnode-bond1-primary.network')), [
    '[Match]',
    'Name=eth1',
    '[Network]',
    'Bond=bond1',
    'PrimarySlave=yes',
  ]);
});

test('network: unknown or bad bond options and a VLAN on a bond slave are refused by name', (t) => {
  const bond = (options: string[]): NodeConfig => ({
    network: { bond: { name: 'bond0', slaves: ['eth0', 'eth1'], options } },
  });
  t.throws(() => settingsFiles(bond(['use_carrier=1']), IMAGE), {
    instanceOf: HvError,
    message: /"use_carrier"/,
  });
  t.throws(() => settingsFiles(bond(['mode=fastest']), IMAGE), { message: /mode=fastest/ });
  t.throws(() => settingsFiles(bond(['miimon=-5']), IMAGE), { message: /miimon=-5/ });
  t.throws(() => settingsFiles(bond(['primary=eth9']), IMAGE), { message: /primary=eth9.*eth0, eth1/ });
  t.throws(
    () =>
      settingsFiles(
        { network: { bond: { name: 'bond0', slaves: ['eth0', 'eth1'] }, vlan: { id: 5, nic: 'eth1' } } },
        IMAGE,
      ),
    { message: /eth1 is a slave of the bond bond0/ },
  );
});

test('netconsole, collectd, kdump, iSCSI, engine', (t) => {
  const config = fromCmdline(
    t,
    'BOOTIF=eno2 netconsole=10.0.0.9 collectd=stats.example.com kdump_nfs=nfs.example.com:/var/crash iscsi_name=iqn.2024-01.com.example:node1 management_server=engine.example.com:443 management_server_fingerprint=' +
      Array(20).fill('AB').join(':'),
  );
  const files = settingsFiles(config, IMAGE);
  t.deepEqual(body(content(files, '/etc/modprobe.d/hvnode-netconsole.conf')), [
    'options netconsole netconsole=@/eno2,6666@10.0.0.9/',
  ]);
  t.deepEqual(body(content(files, '/etc/modules-load.d/hvnode-netconsole.conf')), ['netconsole']);
  t.deepEqual(body(content(files, '/etc/collectd/collectd.conf.d/hvnode.conf')), [
    'LoadPlugin network',
    '<Plugin network>',
    '  Server "stats.example.com" "25826"',
    '</Plugin>',
  ]);
  t.deepEqual(body(content(files, '/etc/default/kdump-tools')), [
    'USE_KDUMP=1',
    'KDUMP_COREDIR="/var/crash"',
    "NFS='nfs.example.com:/var/crash'",
  ]);
  t.is(content(files, '/etc/iscsi/initiatorname.iscsi'), 'InitiatorName=iqn.2024-01.com.example:node1\n');
  t.deepEqual(JSON.parse(content(files, '/etc/hvnode/engine.json')), {
    server: 'engine.example.com',
    port: 443,
    fingerprint: Array(20).fill('AB').join(':'),
  });
  t.true(files.every((f) => f.mode === 0o644));

  const ssh = settingsFiles(fromCmdline(t, 'kdump_ssh=dump@10.0.0.8 netconsole=[2001:db8::9]:7000'), IMAGE);
  t.deepEqual(body(content(ssh, '/etc/default/kdump-tools')).slice(2), ["SSH='dump@10.0.0.8'"]);
  t.deepEqual(body(content(ssh, '/etc/modprobe.d/hvnode-netconsole.conf')), [
    'options netconsole netconsole=@/,7000@2001:db8::9/',
  ]);
  // syslog to an IPv6 address, default port
  const v6 = settingsFiles(fromCmdline(t, 'syslog=2001:db8::7'), IMAGE);
  t.deepEqual(body(content(v6, '/etc/rsyslog.d/50-hvnode-remote.conf')), ['*.* @@[2001:db8::7]:514']);
});

test('keyboard: /etc/default/keyboard in console-setup format, as sh reads it', (t) => {
  const dir = scratch(t);
  const read = (cmdline: string) => {
    const files = settingsFiles(fromCmdline(t, cmdline), IMAGE);
    t.deepEqual(
      files.map((f) => f.path),
      ['/etc/default/keyboard'],
    );
    const f = files[0] as SettingFile;
    t.is(f.mode, 0o644);
    // console-setup and systemd-localed source it as shell variable assignments
    writeFileSync(join(dir, 'keyboard'), f.content);
    const r = execFileSync(
      'sh',
      [
        '-c',
        '. "$1"; echo "$XKBMODEL|$XKBLAYOUT|$XKBVARIANT|$XKBOPTIONS|$BACKSPACE"',
        'sh',
        join(dir, 'keyboard'),
      ],
      { encoding: 'utf8' },
    );
    return { body: body(f.content), vars: r.trim() };
  };
  t.deepEqual(read('keyboard=de-nodeadkeys'), {
    body: [
      'XKBMODEL="pc105"',
      'XKBLAYOUT="de"',
      'XKBVARIANT="nodeadkeys"',
      'XKBOPTIONS=""',
      'BACKSPACE="guess"',
    ],
    vars: 'pc105|de|nodeadkeys||guess',
  });
  // no variant: XKBVARIANT is empty, as in Debian's own file; a variant may hold "-"
  t.is(read('keyboard=gb').vars, 'pc105|gb|||guess');
  t.is(read('keyboard=us-alt-intl').vars, 'pc105|us|alt-intl||guess');
});

test('logrotate_max_size: a global maxsize in KB, in the first file of /etc/logrotate.d', (t) => {
  const files = settingsFiles(fromCmdline(t, 'logrotate_max_size=2048 syslog=logs.example.com'), IMAGE);
  t.deepEqual(
    files.map((f) => f.path),
    ['/etc/logrotate.d/00-hvnode-maxsize', '/etc/rsyslog.d/50-hvnode-remote.conf'],
  );
  t.deepEqual(body(content(files, '/etc/logrotate.d/00-hvnode-maxsize')), ['maxsize 2048k']);
  t.is(byPath(files)['/etc/logrotate.d/00-hvnode-maxsize']?.mode, 0o644);
});

test('netconsole to a host name is refused: the kernel needs an address', (t) => {
  // the command line and the schema refuse it already (cmdline.test.ts); the stage still does
  const config: NodeConfig = { logging: { netconsole: { server: 'logs.example.com', port: 6666 } } };
  const err = t.throws(() => settingsFiles(config, IMAGE), { instanceOf: HvError });
  t.regex(err.message, /netconsole needs the IP address/);
});

// ---------------------------------------------------------------------------------------------
// storeSettings and readImageFiles

test('storeSettings writes persist layout with modes and merges the existing files list', async (t) => {
  const config = scratch(t);
  writeFileSync(join(config, 'files'), '/etc/ssh\n/etc/hosts\n\n/var/lib/x\n');
  mkdirSync(join(config, 'etc/ssh'), { recursive: true });
  const files = settingsFiles(fromCmdline(t, `hostname=node1 adminpw=${HASH} ssh_pwauth=0 ip=dhcp`), IMAGE);
  const written = await storeSettings(config, files);
  t.deepEqual(
    written,
    files.map((f) => f.path),
  );
  t.is(readFileSync(join(config, 'etc/hostname'), 'utf8'), 'node1\n');
  t.is(readFileSync(join(config, 'etc/shadow'), 'utf8'), content(files, '/etc/shadow'));
  t.is(statSync(join(config, 'etc/shadow')).mode & 0o7777, 0o640);
  t.is(statSync(join(config, 'etc/hostname')).mode & 0o7777, 0o644);
  t.is(statSync(join(config, 'etc/systemd/network')).mode & 0o7777, 0o755);
  if (process.getuid?.() === 0) {
    t.is(statSync(join(config, 'etc/shadow')).gid, 42);
    t.is(statSync(join(config, 'etc/hostname')).uid, 0);
  }
  t.is(
    readFileSync(join(config, 'etc/ssh/sshd_config.d/hvnode.conf'), 'utf8'),
    content(files, '/etc/ssh/sshd_config.d/hvnode.conf'),
  );
  // old entries kept, sorted, deduplicated; the sshd drop-in is inside the persisted /etc/ssh
  t.is(
    readFileSync(join(config, 'files'), 'utf8'),
    [
      '/etc/hostname',
      '/etc/hosts',
      '/etc/shadow',
      '/etc/ssh',
      '/etc/systemd/network/10-hvnode.network',
      '/var/lib/x',
      '',
    ].join('\n'),
  );
  t.false(existsSync(join(config, '.files.hvnode-new')));
  // again: same result (idempotent)
  await storeSettings(config, files);
  t.is(readFileSync(join(config, 'files'), 'utf8').split('\n').length, 7);
});

test('storeSettings refuses a path that is not absolute and normalized, writing nothing', async (t) => {
  const config = scratch(t);
  for (const path of ['etc/hostname', '/etc/../shadow', '/etc/hosts/', '/']) {
    const files: SettingFile[] = [
      { path: '/etc/hostname', content: 'x\n', mode: 0o644 },
      { path, content: 'y\n', mode: 0o644 },
    ];
    await t.throwsAsync(storeSettings(config, files), {
      instanceOf: HvError,
      message: /not an absolute, normalized path/,
    });
  }
  t.false(existsSync(join(config, 'etc')));
  t.false(existsSync(join(config, 'files')));
});

test('readImageFiles reads shadow, passwd and the optional group and hosts', (t) => {
  const root = scratch(t);
  mkdirSync(join(root, 'etc'));
  writeFileSync(join(root, 'etc/shadow'), SHADOW);
  writeFileSync(join(root, 'etc/passwd'), PASSWD);
  t.deepEqual(readImageFiles(root), { shadow: SHADOW, passwd: PASSWD });
  writeFileSync(join(root, 'etc/group'), GROUP);
  writeFileSync(join(root, 'etc/hosts'), '127.0.0.1 localhost\n');
  t.deepEqual(readImageFiles(root), {
    shadow: SHADOW,
    passwd: PASSWD,
    group: GROUP,
    hosts: '127.0.0.1 localhost\n',
  });
  rmSync(join(root, 'etc/shadow'));
  t.throws(() => readImageFiles(root), { instanceOf: HvError, message: /cannot read .*etc\/shadow/ });
});

// ---------------------------------------------------------------------------------------------
// persist --restore and the host name

test('hostnameToApply: only when /etc/hostname was restored now, first non-comment line', (t) => {
  const read = (text: string) => (p: string) => {
    t.is(p, '/etc/hostname');
    return text;
  };
  t.is(
    hostnameToApply({ restored: ['/etc/hosts', '/etc/hostname'] }, read('node1.example.com\n')),
    'node1.example.com',
  );
  t.is(hostnameToApply({ restored: ['/etc/hostname'] }, read('# set by hvnode\n\n  node2  \n')), 'node2');
  t.is(
    hostnameToApply({ restored: ['/etc/hosts'] }, () => {
      throw new Error('not read');
    }),
    undefined,
  );
  t.is(hostnameToApply({ restored: ['/etc/hostname'] }, read('\n')), undefined);
  t.throws(() => hostnameToApply({ restored: ['/etc/hostname'] }, read('-rf\n')), {
    message: /not a host name/,
  });
  t.throws(() => hostnameToApply({ restored: ['/etc/hostname'] }, read(`${'a'.repeat(65)}\n`)));
});
