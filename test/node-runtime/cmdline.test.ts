import { isIPv4, isIPv6 } from 'node:net';
import test from 'ava';
import { execa } from 'execa';
import type { Diagnostic } from '../../common/index.ts';
import {
  CLAIMED_ARGS,
  type CmdlineResult,
  formatCmdline,
  KERNEL_ARGUMENTS,
  type NodeConfig,
  nodeConfigSchema,
  parseCmdline,
  splitCmdline,
  validateNodeConfig,
  valuePattern,
} from '../../node-runtime/index.ts';
import { cli } from '../helpers/env.ts';
import { mulberry32 } from '../helpers/prng.ts';

// Real hashes (openssl passwd -6/-5/-1 -salt abcdefgh secret, and yescrypt/bcrypt from libxcrypt).
const SHA512 =
  '$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.';
const SHA256 = '$5$abcdefgh$gruCpC7VkOTspMQTTSAR8mtlO9Upms.fwqE5y16JVM.';
const MD5 = '$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1';
const YESCRYPT = '$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7';
const BCRYPT = '$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW';
const FP = '33:2B:0C:61:5B:AF:8E:36:41:7A:66:8A:1B:C5:D1:1E:6F:55:9A:0E';
const KEY = 'MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=';

/** Parses and checks what every result must satisfy: a schema-valid config. */
function parse(cmdline: string): CmdlineResult {
  const r = parseCmdline(cmdline);
  const report = validateNodeConfig(r.config);
  if (report.hasErrors)
    throw new Error(`invalid config from ${JSON.stringify(cmdline)}: ${JSON.stringify(report.errors)}`);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Splitting

test('splitCmdline splits on whitespace and strips the quotes around a value, as the kernel does', (t) => {
  t.deepEqual(splitCmdline(' a  b=1\tc="x y"\n"d=e f" '), [
    { raw: 'a', key: 'a' },
    { raw: 'b=1', key: 'b', value: '1' },
    { raw: 'c="x y"', key: 'c', value: 'x y' },
    { raw: '"d=e f"', key: 'd', value: 'e f' },
  ]);
});

test('a quote may open mid-word: it groups, and stays in the value', (t) => {
  t.deepEqual(splitCmdline('foo=a"b c"d next'), [
    { raw: 'foo=a"b c"d', key: 'foo', value: 'a"b c"d' },
    { raw: 'next', key: 'next' },
  ]);
});

test('there are no backslash escapes', (t) => {
  t.deepEqual(
    splitCmdline('foo=a\\ b').map((a) => a.raw),
    ['foo=a\\', 'b'],
  );
});

test('an unterminated quote runs to the end of the line and is closed', (t) => {
  t.deepEqual(splitCmdline('a foo="x y  z b=1  \n'), [
    { raw: 'a', key: 'a' },
    { raw: 'foo="x y  z b=1"', key: 'foo', value: 'x y  z b=1' },
  ]);
  t.deepEqual(splitCmdline('"'), [{ raw: '""', key: '' }]);
});

test('odd arguments: lone =, empty key, empty value, quoted bare word', (t) => {
  t.deepEqual(splitCmdline('= ==x =a k= "" "w"'), [
    { raw: '=', key: '=' },
    { raw: '==x', key: '=', value: 'x' },
    { raw: '=a', key: '=a' },
    { raw: 'k=', key: 'k', value: '' },
    { raw: '""', key: '' },
    { raw: '"w"', key: 'w' },
  ]);
  t.deepEqual(splitCmdline(''), []);
  t.deepEqual(splitCmdline(' \t\n\r\v\f'), []);
});

test('a quoted known argument is still that argument', (t) => {
  t.deepEqual(parse('"hostname=node1"').config, { hostname: 'node1' });
  t.deepEqual(parse('hostname="node2"').config, { hostname: 'node2' });
  t.deepEqual(parse('"stateless"').config, { boot: { stateless: true } });
});

// ---------------------------------------------------------------------------------------------
// Every argument: good forms

const goodCases: [string, NodeConfig][] = [
  ['BOOTIF=01-00-16-3E-12-34-57', { network: { bootif: { mac: '00:16:3e:12:34:57' } } }],
  ['BOOTIF=00-16-3e-12-34-57', { network: { bootif: { mac: '00:16:3e:12:34:57' } } }],
  ['BOOTIF=00:16:3E:12:34:57', { network: { bootif: { mac: '00:16:3e:12:34:57' } } }],
  ['BOOTIF=eth0', { network: { bootif: { nic: 'eth0' } } }],
  ['BOOTIF=enp1s0', { network: { bootif: { nic: 'enp1s0' } } }],
  ['BOOTIF=bond0', { network: { bootif: { nic: 'bond0' } } }],
  ['BOOTIF=link', { network: { bootif: { link: true } } }],
  ['storage_init', { storage: { init: { hostVG: [{ first: true }] } } }],
  ['storage_init=', { storage: { init: { hostVG: [{ first: true }] } } }],
  ['ovirt_init=/dev/sda', { storage: { init: { hostVG: [{ path: '/dev/sda' }] } } }],
  [
    'storage_init=/dev/sda,/dev/cciss/c0d0;/dev/disk/by-id/ata-QEMU_HARDDISK_QM00001',
    {
      storage: {
        init: {
          hostVG: [{ path: '/dev/sda' }, { path: '/dev/cciss/c0d0' }],
          appVG: [{ path: '/dev/disk/by-id/ata-QEMU_HARDDISK_QM00001' }],
        },
      },
    },
  ],
  [
    'storage_init=usb:Generic_STORAGE_DEVICE_0000145418-0:0,ata:ALL;scsi',
    {
      storage: {
        init: {
          hostVG: [
            { bus: 'usb', serial: 'Generic_STORAGE_DEVICE_0000145418-0:0' },
            { bus: 'ata', serial: 'ALL' },
          ],
          appVG: [{ bus: 'scsi' }],
        },
      },
    },
  ],
  [
    'storage_init=;/dev/sdb',
    { storage: { init: { hostVG: [{ first: true }], appVG: [{ path: '/dev/sdb' }] } } },
  ],
  ['storage_init=/dev/sda;', { storage: { init: { hostVG: [{ path: '/dev/sda' }] } } }],
  [
    'storage_vol=256:2048:512:5:2048:-1',
    { storage: { volumes: { boot: 256, swap: 2048, root: 512, config: 5, logging: 2048, data: -1 } } },
  ],
  [
    'ovirt_vol=:2048::5:2048:0:1024:-1',
    { storage: { volumes: { swap: 2048, config: 5, logging: 2048, data: 0, swap2: 1024, data2: -1 } } },
  ],
  [
    'storage_vol=2048,Swap:-1,Data:10,config:256,EFI',
    { storage: { volumes: { swap: 2048, data: -1, config: 10, efi: 256 } } },
  ],
  ['storage_vol=:1 storage_vol=::7', { storage: { volumes: { swap: 1, root: 7 } } }],
  ['swap_encrypt=Swap', { storage: { swapEncrypt: { swap: 'aes-cbc-essiv:sha256' } } }],
  [
    'ovirt_swap_encrypt=Swap,aes-xts-plain64;Swap2',
    { storage: { swapEncrypt: { swap: 'aes-xts-plain64', swap2: 'aes-cbc-essiv:sha256' } } },
  ],
  ['mem_overcommit=0.5', { storage: { overcommit: 0.5 } }],
  ['ovirt_overcommit=2', { storage: { overcommit: 2 } }],
  ['wipe_fakeraid', { storage: { wipeFakeraid: true } }],
  ['wipe_fakeraid=no', { storage: { wipeFakeraid: false } }],
  ['install', { boot: { action: 'install' } }],
  ['upgrade', { boot: { action: 'upgrade' } }],
  ['ovirt_upgrade', { boot: { action: 'upgrade' } }],
  ['local_boot', { boot: { action: 'upgrade', localBoot: true } }],
  ['ovirt_local_boot=1', { boot: { action: 'upgrade', localBoot: true } }],
  ['firstboot', { boot: { action: 'firstboot' } }],
  ['ovirt_firstboot', { boot: { action: 'firstboot' } }],
  ['reinstall', { boot: { action: 'reinstall' } }],
  ['uninstall', { boot: { action: 'uninstall' } }],
  ['firstboot=0', { boot: { action: 'none' } }],
  ['ovirt_firstboot=no', { boot: { action: 'none' } }],
  ['reinstall=no', { boot: { action: 'none' } }],
  ['install reinstall', { boot: { action: 'reinstall' } }],
  ['install upgrade', { boot: { action: 'upgrade' } }],
  ['upgrade reinstall', { boot: { action: 'reinstall' } }],
  ['install uninstall firstboot', { boot: { action: 'uninstall' } }],
  ['upgrade upgrade=0', { boot: { action: 'none' } }],
  ['install firstboot=0', { boot: { action: 'install' } }],
  ['stateless', { boot: { stateless: true } }],
  ['ovirt_stateless=0', { boot: { stateless: false } }],
  ['standalone=no', { boot: { standalone: false } }],
  ['ovirt_standalone', { boot: { standalone: true } }],
  ['rescue', { boot: { rescue: true } }],
  ['runtime_mode=managed', { boot: { runtimeMode: 'managed' } }],
  ['runtime_mode=none', { boot: { runtimeMode: 'none' } }],
  [`adminpw=${SHA512}`, { security: { adminPasswordHash: SHA512 } }],
  [`rootpw=${SHA256}`, { security: { rootPasswordHash: SHA256 } }],
  [`adminpw=${MD5} rootpw=${YESCRYPT}`, { security: { adminPasswordHash: MD5, rootPasswordHash: YESCRYPT } }],
  [`adminpw=${BCRYPT}`, { security: { adminPasswordHash: BCRYPT } }],
  ['ssh_pwauth=1', { security: { sshPasswordAuth: true } }],
  ['ssh_pwauth=false', { security: { sshPasswordAuth: false } }],
  ['hostname=node1', { hostname: 'node1' }],
  ['hostname=node-1.lab.example.com', { hostname: 'node-1.lab.example.com' }],
  ['ip=dhcp', { network: { ip: { mode: 'dhcp' } } }],
  ['ip=off', { network: { ip: { mode: 'off' } } }],
  ['ip=10.0.0.5', { network: { ip: { mode: 'static', address: '10.0.0.5' } } }],
  [
    'ip=10.0.0.5 netmask=255.255.255.0 gateway=10.0.0.254',
    {
      network: {
        ip: { mode: 'static', address: '10.0.0.5', netmask: '255.255.255.0', gateway: '10.0.0.254' },
      },
    },
  ],
  [
    'netmask=255.255.0.0 ip=10.0.0.5',
    { network: { ip: { mode: 'static', address: '10.0.0.5', netmask: '255.255.0.0' } } },
  ],
  [
    'ip=10.0.0.5:10.0.0.1:10.0.0.254:255.255.255.0',
    {
      network: {
        ip: { mode: 'static', address: '10.0.0.5', netmask: '255.255.255.0', gateway: '10.0.0.254' },
      },
    },
  ],
  // as in oVirt, the pxelinux form's own netmask and gateway come before the separate arguments
  [
    'ip=10.0.0.5:10.0.0.1::255.255.255.0 netmask=255.0.0.0 gateway=10.0.0.1',
    {
      network: { ip: { mode: 'static', address: '10.0.0.5', netmask: '255.255.255.0', gateway: '10.0.0.1' } },
    },
  ],
  ['ipv6=auto', { network: { ipv6: { mode: 'auto' } } }],
  ['ipv6=dhcp', { network: { ipv6: { mode: 'dhcp' } } }],
  ['ipv6=2001:db8::5', { network: { ipv6: { mode: 'static', address: '2001:db8::5' } } }],
  [
    'ipv6=2001:db8::5/64 ipv6_gateway=fe80::1',
    { network: { ipv6: { mode: 'static', address: '2001:db8::5', prefix: 64, gateway: 'fe80::1' } } },
  ],
  ['dns=1.1.1.1,2001:4860:4860::8888', { network: { dns: ['1.1.1.1', '2001:4860:4860::8888'] } }],
  ['ntp=pool.ntp.org,10.0.0.1', { network: { ntp: ['pool.ntp.org', '10.0.0.1'] } }],
  ['vlan=10', { network: { vlan: { id: 10 } } }],
  ['vlan=4094:eth0', { network: { vlan: { id: 4094, nic: 'eth0' } } }],
  ['bond=bond0:eth0,eth1', { network: { bond: { name: 'bond0', slaves: ['eth0', 'eth1'] } } }],
  [
    'bond_setup=bond1:em1,em2:mode=802.3ad,miimon=100',
    { network: { bond: { name: 'bond1', slaves: ['em1', 'em2'], options: ['mode=802.3ad', 'miimon=100'] } } },
  ],
  [
    // options may hold ":" (a MAC): they are the rest of the value
    'bond=bond0:eth0,eth1:mode=4,ad_actor_system=52:54:00:12:34:56,primary=eth1,arp_ip_target=10.0.0.1',
    {
      network: {
        bond: {
          name: 'bond0',
          slaves: ['eth0', 'eth1'],
          options: ['mode=4', 'ad_actor_system=52:54:00:12:34:56', 'primary=eth1', 'arp_ip_target=10.0.0.1'],
        },
      },
    },
  ],
  [
    'vlan=20:bond0 bond=bond0:eth0,eth1',
    { network: { vlan: { id: 20, nic: 'bond0' }, bond: { name: 'bond0', slaves: ['eth0', 'eth1'] } } },
  ],
  ['syslog=log.example.com', { logging: { syslog: { server: 'log.example.com' } } }],
  ['syslog=10.0.0.1:514', { logging: { syslog: { server: '10.0.0.1', port: 514 } } }],
  ['syslog=2001:db8::1', { logging: { syslog: { server: '2001:db8::1' } } }],
  ['netconsole=[2001:db8::1]:6666', { logging: { netconsole: { server: '2001:db8::1', port: 6666 } } }],
  ['logrotate_max_size=1024', { logging: { logrotateMaxSize: 1024 } }],
  ['logrotate_max_size=1048576', { logging: { logrotateMaxSize: 1048576 } }],
  [
    'syslog=10.0.0.1 logrotate_max_size=1',
    { logging: { syslog: { server: '10.0.0.1' }, logrotateMaxSize: 1 } },
  ],
  ['keyboard=de', { keyboard: 'de' }],
  ['keyboard=de-nodeadkeys', { keyboard: 'de-nodeadkeys' }],
  ['keyboard=us-alt-intl', { keyboard: 'us-alt-intl' }],
  ['keyboard=ch-de_Sundeadkeys', { keyboard: 'ch-de_Sundeadkeys' }],
  ['keyboard=latam', { keyboard: 'latam' }],
  [
    'collectd=collectd.example.com:25826',
    { monitoring: { collectd: { server: 'collectd.example.com', port: 25826 } } },
  ],
  ['kdump_nfs=nfs.example.com:/var/crash', { kdump: { nfs: 'nfs.example.com:/var/crash' } }],
  ['kdump_ssh=root@dump.example.com', { kdump: { ssh: 'root@dump.example.com' } }],
  ['kdump_ssh=root@dump kdump_nfs=10.0.0.2:/crash', { kdump: { nfs: '10.0.0.2:/crash' } }],
  [
    'iscsi_name=iqn.1994-05.com.redhat:abc123 iscsi_server=10.0.0.9:3260 iscsi_target_name=iqn.2012-01.com.example:disk1 iscsi_install iscsi_init=/dev/sda',
    {
      iscsi: {
        initiatorName: 'iqn.1994-05.com.redhat:abc123',
        target: { server: '10.0.0.9', port: 3260, name: 'iqn.2012-01.com.example:disk1' },
        install: true,
        initDisk: '/dev/sda',
      },
    },
  ],
  ['iscsi_name=eui.02004567A425678D', { iscsi: { initiatorName: 'eui.02004567A425678D' } }],
  ['management_server=engine.example.com', { engine: { server: 'engine.example.com' } }],
  ['management_server=engine.example.com:8443', { engine: { server: 'engine.example.com', port: 8443 } }],
  ['managment_server=engine', { engine: { server: 'engine' } }],
  ['ovirt_managment_server=10.1.1.1:443', { engine: { server: '10.1.1.1', port: 443 } }],
  [
    `management_port=8443 management_server=engine management_server_fingerprint=${FP}`,
    { engine: { server: 'engine', port: 8443, fingerprint: FP } },
  ],
  ['management_server=[2001:db8::7]:443', { engine: { server: '2001:db8::7', port: 443 } }],
  ['config_server=https://cfg.example.com/v1', { configServer: { url: 'https://cfg.example.com/v1' } }],
  ['config_server=http://10.0.0.1:8080', { configServer: { url: 'http://10.0.0.1:8080' } }],
  ['config_server=cfg.example.com:8443', { configServer: { url: 'https://cfg.example.com:8443' } }],
  ['config_server=[2001:db8::1]:8443', { configServer: { url: 'https://[2001:db8::1]:8443' } }],
  [`config_key=${KEY.slice(16)}`, { configServer: { key: KEY.slice(16) } }],
  [`config_key=sha256:${'ab'.repeat(32)}`, { configServer: { key: `sha256:${'ab'.repeat(32)}` } }],
  [
    'local_boot_trigger=http://foreman.example.com/unattended/built?host=@HOSTNAME@',
    { localBootTrigger: 'http://foreman.example.com/unattended/built?host=@HOSTNAME@' },
  ],
  // the later of two arguments for one setting wins
  ['hostname=a hostname=b', { hostname: 'b' }],
  ['ip=dhcp ip=10.0.0.1', { network: { ip: { mode: 'static', address: '10.0.0.1' } } }],
];

test('every argument: the good forms', (t) => {
  for (const [cmdline, expected] of goodCases) {
    const r = parse(cmdline);
    t.deepEqual(r.errors, [], cmdline);
    t.deepEqual(r.unknown, [], cmdline);
    t.deepEqual(r.config, expected, cmdline);
  }
});

test('the config_key case above is a real 44-character base64 key', (t) => {
  t.is(KEY.slice(16).length, 44);
});

// ---------------------------------------------------------------------------------------------
// Every argument: bad forms. Each is one error naming the argument; the rest is still parsed.

const badCases: [string, string, RegExp][] = [
  [
    'BOOTIF=01-zz-16-3e-12-34-57',
    'BOOTIF',
    /^BOOTIF=01-zz-16-3e-12-34-57: expected a MAC .*NIC name.*"link"/,
  ],
  ['BOOTIF=', 'BOOTIF', /^BOOTIF=: expected/],
  ['BOOTIF', 'BOOTIF', /^BOOTIF: expected/],
  ['BOOTIF=a-very-long-nic-name0', 'BOOTIF', /expected/],
  ['BOOTIF=eth0/1', 'BOOTIF', /expected/],
  ['storage_init=sda', 'storage_init', /"sda" is not a disk: expected \/dev\/PATH or ata\|scsi\|usb\|cciss/],
  ['ovirt_init=/dev/sda,,/dev/sdb', 'ovirt_init', /an empty item is not a disk/],
  ['storage_init=/dev/sda;/dev/sdb;/dev/sdc', 'storage_init', /at most one ";"/],
  ['storage_init=/dev/../etc/passwd', 'storage_init', /not a disk/],
  ['storage_init=/dev/', 'storage_init', /not a disk/],
  ['storage_init=floppy:1', 'storage_init', /"floppy:1" is not a disk/],
  ['storage_init=usb:a"b"', 'storage_init', /not a disk/],
  ['storage_vol=abc', 'storage_vol', /"abc" is not a size for Boot \(MB, 0 = none\)/],
  ['storage_vol=:-1', 'storage_vol', /"-1" is not a size for Swap/],
  ['storage_vol=:::::-2', 'storage_vol', /"-2" is not a size for Data \(MB, 0 = none, -1 = the rest\)/],
  ['storage_vol=1:2:3:4:5:6:7:8:9', 'storage_vol', /"9" is item 9, past DATA2: name it/],
  ['storage_vol=5,Foo', 'storage_vol', /"Foo" is not a volume \(EFI, Boot, Swap/],
  ['storage_vol=5,Swap,x', 'storage_vol', /has more than SIZE,Name/],
  ['storage_vol=', 'storage_vol', /^storage_vol=: expected BOOT:SWAP:ROOT/],
  ['storage_vol=99999999999', 'storage_vol', /not a size/],
  ['swap_encrypt=Data', 'swap_encrypt', /expected Swap\[,CIPHER\]/],
  ['swap_encrypt=Swap,', 'swap_encrypt', /expected/],
  ['swap_encrypt=Swap;Swap2;Swap', 'swap_encrypt', /expected/],
  ['mem_overcommit=abc', 'mem_overcommit', /expected a ratio/],
  ['mem_overcommit=-1', 'mem_overcommit', /expected a ratio/],
  ['mem_overcommit=101', 'mem_overcommit', /expected a ratio/],
  ['ovirt_overcommit=0.5:1', 'ovirt_overcommit', /expected a ratio/],
  [
    'wipe_fakeraid=maybe',
    'wipe_fakeraid',
    /^wipe_fakeraid=maybe: expected wipe_fakeraid \(or wipe_fakeraid=1\)/,
  ],
  ['firstboot=maybe', 'firstboot', /expected firstboot .*firstboot=0 to turn it off/],
  ['upgrade=2', 'upgrade', /expected upgrade/],
  ['local_boot=x', 'local_boot', /expected local_boot/],
  ['install=x', 'install', /expected install/],
  ['uninstall=later', 'uninstall', /expected uninstall/],
  ['stateless=perhaps', 'stateless', /expected stateless/],
  ['standalone=2', 'standalone', /expected standalone/],
  ['rescue=please', 'rescue', /expected rescue/],
  ['runtime_mode=cloud', 'runtime_mode', /^runtime_mode=cloud: expected ovirt, managed or none/],
  ['runtime_mode', 'runtime_mode', /^runtime_mode: expected/],
  ['adminpw', 'adminpw', /^adminpw: expected a crypt\(3\) hash/],
  ['ssh_pwauth=2', 'ssh_pwauth', /expected ssh_pwauth/],
  ['hostname=-bad', 'hostname', /^hostname=-bad: expected a host name \(RFC 1123/],
  ['hostname=bad-', 'hostname', /expected a host name/],
  ['hostname=a..b', 'hostname', /expected a host name/],
  ['hostname=1.2.3.4', 'hostname', /expected a host name/],
  ['hostname=under_score', 'hostname', /expected a host name/],
  [`hostname=${'a'.repeat(64)}`, 'hostname', /expected a host name/],
  [`hostname=${'abcdefghi.'.repeat(25)}abcd`, 'hostname', /expected a host name/],
  ['hostname=', 'hostname', /^hostname=: expected/],
  [
    'ip=10.0.0.256',
    'ip',
    /^ip=10\.0\.0\.256: expected dhcp, off, ADDRESS .* or CLIENT:SERVER:GATEWAY:NETMASK/,
  ],
  ['ip=010.0.0.1', 'ip', /expected dhcp/],
  ['ip=dhcp6', 'ip', /expected dhcp/],
  ['ip=1.2.3.4:5.6.7.8', 'ip', /expected dhcp/],
  ['ip=1.2.3.4:x:y:z', 'ip', /expected dhcp/],
  ['ip=1.2.3.4:::255.0.255.0', 'ip', /expected dhcp/],
  ['ip=', 'ip', /expected dhcp/],
  ['ip=1.2.3.4 netmask=255.0.255.0', 'netmask', /^netmask=255\.0\.255\.0: expected a dotted IPv4 netmask/],
  ['ip=1.2.3.4 netmask=24', 'netmask', /expected a dotted IPv4 netmask/],
  ['netmask=255.255.255.0', 'netmask', /^netmask=255\.255\.255\.0: needs a static address \(ip=ADDRESS\)/],
  ['ip=dhcp gateway=10.0.0.1', 'gateway', /^gateway=10\.0\.0\.1: needs a static address/],
  ['ip=1.2.3.4 gateway=abc', 'gateway', /expected an IPv4 address/],
  ['ipv6=2001:db8::g', 'ipv6', /expected auto, dhcp or ADDRESS\[\/PREFIX\]/],
  ['ipv6=2001:db8::5/129', 'ipv6', /expected auto/],
  ['ipv6=2001:db8::5/64/1', 'ipv6', /expected auto/],
  ['ipv6=on', 'ipv6', /expected auto/],
  ['ipv6=auto ipv6_gateway=fe80::1', 'ipv6_gateway', /needs a static IPv6 address/],
  ['ipv6=::1 ipv6_gateway=1.2.3.4', 'ipv6_gateway', /expected an IPv6 address/],
  ['dns=1.1.1.1,,8.8.8.8', 'dns', /an empty item is not an IP address/],
  ['dns=example.com', 'dns', /"example\.com" is not an IP address/],
  ['dns=', 'dns', /expected IP addresses/],
  ['ntp=bad_host', 'ntp', /"bad_host" is not a host/],
  ['ntp=a,', 'ntp', /an empty item is not a host/],
  ['vlan=abc', 'vlan', /^vlan=abc: expected a VLAN id 1-4094/],
  ['vlan=0', 'vlan', /expected a VLAN id 1-4094/],
  ['vlan=4095', 'vlan', /expected a VLAN id/],
  ['vlan=010', 'vlan', /expected a VLAN id/],
  ['vlan=10:eth0:x', 'vlan', /expected a VLAN id/],
  ['vlan=10:eth/0', 'vlan', /expected a VLAN id/],
  ['bond=bond0', 'bond', /^bond=bond0: expected NAME:NIC,NIC\[:OPTION=VALUE/],
  ['bond=bond0:eth0:mode', 'bond', /expected NAME:NIC/],
  ['bond=bond0::mode=1', 'bond', /expected NAME:NIC/],
  ['bond_setup=bond0:eth0:', 'bond_setup', /expected NAME:NIC/],
  ['syslog=host:0', 'syslog', /^syslog=host:0: expected SERVER\[:PORT\]/],
  ['syslog=host:65536', 'syslog', /expected SERVER/],
  ['syslog=host:abc', 'syslog', /expected SERVER/],
  ['syslog=[nope]:1', 'syslog', /expected SERVER/],
  ['syslog=[::1', 'syslog', /expected SERVER/],
  ['netconsole=', 'netconsole', /expected SERVER/],
  [
    'logrotate_max_size=0',
    'logrotate_max_size',
    /^logrotate_max_size=0: expected a size in KB from 1 to 1048576/,
  ],
  ['logrotate_max_size=1048577', 'logrotate_max_size', /expected a size in KB/],
  ['logrotate_max_size=1k', 'logrotate_max_size', /expected a size in KB/],
  ['logrotate_max_size=01024', 'logrotate_max_size', /expected a size in KB/],
  ['logrotate_max_size=-5', 'logrotate_max_size', /expected a size in KB/],
  ['logrotate_max_size=', 'logrotate_max_size', /expected a size in KB/],
  ['logrotate_max_size', 'logrotate_max_size', /expected a size in KB/],
  ['keyboard=DE', 'keyboard', /^keyboard=DE: expected a keyboard layout as XKB names it/],
  ['keyboard=d', 'keyboard', /expected a keyboard layout/],
  ['keyboard=de_CH', 'keyboard', /expected a keyboard layout/],
  ['keyboard=de-', 'keyboard', /expected a keyboard layout/],
  ['keyboard=de--x', 'keyboard', /expected a keyboard layout/],
  ['keyboard=de(nodeadkeys)', 'keyboard', /expected a keyboard layout/],
  ['keyboard=us,de', 'keyboard', /expected a keyboard layout/],
  ['keyboard="de latin1"', 'keyboard', /expected a keyboard layout/],
  ['keyboard=', 'keyboard', /expected a keyboard layout/],
  // the kernel's netconsole does no name lookup: refused here, not by the install after the disks
  [
    'netconsole=logs.example.com:6666',
    'netconsole',
    /^netconsole=logs\.example\.com:6666: expected ADDRESS\[:PORT\]: netconsole needs the IP address/,
  ],
  [
    'bond=bond0:eth0,eth1:mode=bogus',
    'bond',
    /^bond=bond0:eth0,eth1:mode=bogus: mode=bogus: expected one of balance-rr, .*\(or 0-6\)$/,
  ],
  ['bond=bond0:eth0,eth1:mode=7', 'bond', /mode=7: expected one of/],
  ['bond=bond0:eth0:miimon=-5', 'bond', /miimon=-5: expected an integer from 0 to/],
  ['bond=bond0:eth0:use_carrier=1', 'bond', /the bonding option "use_carrier" is not supported/],
  ['bond=bond0:eth0,eth1:primary=eth9', 'bond', /primary=eth9: expected one of the slaves \(eth0, eth1\)/],
  ['bond=bond0:eth0:arp_ip_target=fe80::1', 'bond', /arp_ip_target=fe80::1: expected an IPv4 address/],
  [
    'bond=bond0:eth0,bond0',
    'bond',
    /^bond=bond0:eth0,bond0: bond0: the bond cannot be one of its own slaves$/,
  ],
  ['bond=bond0:eth0,eth1 vlan=5:eth1', 'vlan', /^vlan=5:eth1: eth1 is a slave of the bond bond0$/],
  ['vlan=5:eth1 bond_setup=bond0:eth0,eth1', 'vlan', /^vlan=5:eth1: eth1 is a slave of the bond bond0$/],
  ['stateless=garbage', 'stateless', /^stateless=garbage: expected stateless \(or stateless=1\)/],
  ['ovirt_stateless=2', 'ovirt_stateless', /^ovirt_stateless=2: expected/],
  ['hvnode.slot=Root2', 'hvnode.slot', /^hvnode\.slot=Root2: expected Root or RootBackup/],
  ['hvnode.esp=', 'hvnode.esp', /^hvnode\.esp=: expected the EFI system partition/],
  ['hvnode.selftest=maybe', 'hvnode.selftest', /^hvnode\.selftest=maybe: expected/],
  ['collectd=a_b', 'collectd', /expected SERVER/],
  ['kdump_nfs=nfs.example.com', 'kdump_nfs', /^kdump_nfs=nfs\.example\.com: expected HOST:\/PATH/],
  ['kdump_nfs=host:relative', 'kdump_nfs', /expected HOST:\/PATH/],
  ['kdump_ssh=dump.example.com', 'kdump_ssh', /expected USER@HOST/],
  ['iscsi_name=foo', 'iscsi_name', /expected an iSCSI name/],
  ['iscsi_server=', 'iscsi_server', /expected SERVER/],
  ['iscsi_target_name=iqn.bad', 'iscsi_target_name', /expected an iSCSI name/],
  ['iscsi_init=sda', 'iscsi_init', /expected a device path/],
  ['iscsi_install=x', 'iscsi_install', /expected iscsi_install/],
  ['management_server=', 'management_server', /expected SERVER/],
  ['managment_server=eng:0', 'managment_server', /expected SERVER/],
  ['management_server=e management_port=0', 'management_port', /^management_port=0: expected a port 1-65535/],
  ['management_server=e management_port', 'management_port', /^management_port: expected a port/],
  [
    'management_server=e management_server_fingerprint=zz',
    'management_server_fingerprint',
    /expected the engine CA/,
  ],
  ['management_port=443', 'management_port', /^management_port=443: needs management_server=HOST/],
  [`management_server_fingerprint=${FP}`, 'management_server_fingerprint', /needs management_server=HOST/],
  ['config_server=ftp://x', 'config_server', /expected an http\(s\) URL or HOST\[:PORT\]/],
  ['config_server=https://', 'config_server', /expected an http/],
  ['config_server=https://bad_host/', 'config_server', /expected an http/],
  ['config_server=cfg..example', 'config_server', /expected an http/],
  ['config_key=abc', 'config_key', /expected an Ed25519 public key/],
  ['local_boot_trigger=foreman/built', 'local_boot_trigger', /expected an http\(s\) URL/],
];

/** An error as the CLI prints it: the argument once, then what is wrong. */
function shown(e: Diagnostic | undefined): string {
  return e ? `${e.arg}: ${e.message}` : '(no error)';
}

/** The name of the argument an error is at (`vlan` of `vlan=5000`). */
function nameOf(e: Diagnostic | undefined): string | undefined {
  return e?.arg?.split('=')[0];
}

test('every argument: the bad forms are one error that names the argument and the expected form', (t) => {
  for (const [cmdline, arg, message] of badCases) {
    const r = parse(`hostname=ok ${cmdline} BOOTIF=eth1`);
    t.is(r.errors.length, 1, `${cmdline}: ${JSON.stringify(r.errors)}`);
    t.is(nameOf(r.errors[0]), arg, cmdline);
    t.is(r.errors[0]?.severity, 'error');
    t.regex(shown(r.errors[0]), message, cmdline);
    // the argument is the error's place, not repeated in its message
    t.false(r.errors[0]?.message.startsWith(`${arg}=`), cmdline);
    // the rest of the line is still read
    t.is(r.config.hostname, 'ok', cmdline);
    t.deepEqual(r.config.network?.bootif, { nic: 'eth1' }, cmdline);
  }
});

test('a bad value keeps the earlier good one of the same setting', (t) => {
  const r = parse('vlan=10 vlan=abc');
  t.deepEqual(r.config, { network: { vlan: { id: 10 } } });
  t.is(r.errors.length, 1);
});

test('a plain password is refused and never echoed', (t) => {
  for (const cmdline of [
    'adminpw=hunter2',
    'rootpw=hunter2',
    `adminpw=${SHA512.slice(0, 40)}`,
    'adminpw=$6$abc$def',
  ]) {
    const r = parse(cmdline);
    t.is(r.errors.length, 1, cmdline);
    t.regex(shown(r.errors[0]), /=\(not shown\): expected a crypt\(3\) hash .*a plain password is refused/);
    t.false(JSON.stringify(r).includes('hunter2'), cmdline);
    t.deepEqual(r.config, {});
  }
});

test('messages escape control characters and shorten long values', (t) => {
  const r = parse(`vlan=\u001b[31m hostname=${'x'.repeat(300)}!`);
  t.is(shown(r.errors[0]), 'vlan=\\x1b[31m: expected a VLAN id 1-4094, optionally :NIC (vlan=ID[:NIC])');
  t.true(shown(r.errors[1]).length < 200);
});

// ---------------------------------------------------------------------------------------------
// Unknown arguments and the bootloader

test('unknown and kernel-internal arguments are kept for the bootloader, in order, verbatim', (t) => {
  const r = parse(
    'BOOT_IMAGE=/vmlinuz0 root=live:CDLABEL=HV rootfstype=auto ro rd.live.image quiet console=tty0 console=ttyS0,115200n8 crashkernel=128M foo="a b" hostname=n1 "bar=x y" check',
  );
  t.deepEqual(r.errors, []);
  t.deepEqual(r.config.bootloaderArgs, [
    'BOOT_IMAGE=/vmlinuz0',
    'root=live:CDLABEL=HV',
    'rootfstype=auto',
    'ro',
    'rd.live.image',
    'quiet',
    'console=tty0',
    'console=ttyS0,115200n8',
    'crashkernel=128M',
    'foo="a b"',
    '"bar=x y"',
    'check',
  ]);
  // crashkernel=, console= and root= are known (kept for the bootloader), not unknown
  t.deepEqual(r.unknown, [
    'BOOT_IMAGE=/vmlinuz0',
    'rootfstype=auto',
    'ro',
    'rd.live.image',
    'quiet',
    'foo="a b"',
    '"bar=x y"',
    'check',
  ]);
  t.is(r.config.hostname, 'n1');
  t.deepEqual(r.kernel, { root: 'live:CDLABEL=HV' });
});

test('names are case-sensitive and exact, as the kernel passes them', (t) => {
  const r = parse('bootif=eth0 Hostname=x uninstallx');
  t.deepEqual(r.unknown, ['bootif=eth0', 'Hostname=x', 'uninstallx']);
  t.deepEqual(r.config, { bootloaderArgs: ['bootif=eth0', 'Hostname=x', 'uninstallx'] });
});

test('the oVirt autoinstall example', (t) => {
  const r = parse(
    `storage_init=/dev/sda BOOTIF=eth0 management_server=host:443 management_server_fingerprint=${FP} adminpw=${SHA512}`,
  );
  t.deepEqual(r, {
    config: {
      network: { bootif: { nic: 'eth0' } },
      storage: { init: { hostVG: [{ path: '/dev/sda' }] } },
      security: { adminPasswordHash: SHA512 },
      engine: { server: 'host', port: 443, fingerprint: FP },
    },
    kernel: {},
    unknown: [],
    errors: [],
  });
});

// ---------------------------------------------------------------------------------------------
// The schema and formatCmdline

test('validateNodeConfig reports every problem with its path', (t) => {
  const report = validateNodeConfig({
    hostname: 'bad_name',
    network: { vlan: { id: 5000 }, extra: 1 },
    storage: { volumes: { swap: -1 } },
    bootloaderArgs: ['hostname=x', 'ok'],
  });
  const paths = report.errors.map((e) => e.path);
  t.true(paths.includes('/hostname'));
  t.true(paths.includes('/network/vlan/id'));
  t.true(paths.includes('/network'));
  t.true(paths.includes('/storage/volumes/swap'));
  t.true(paths.includes('/bootloaderArgs/0'));
  t.false(paths.includes('/bootloaderArgs/1'));
  t.regex(report.errors.find((e) => e.path === '/network')?.message ?? '', /unknown key "extra"/);
  t.false(validateNodeConfig({}).hasErrors);
});

test('the schema refuses what the command line cannot say', (t) => {
  const invalid: unknown[] = [
    { network: {} },
    { bootloaderArgs: [] },
    { bootloaderArgs: ['"ip=dhcp"'] },
    { bootloaderArgs: ['stateless'] },
    { bootloaderArgs: ['a b'] },
    { bootloaderArgs: ['a="b'] },
    { boot: { localBoot: true } },
    { boot: { action: 'install', localBoot: true } },
    { storage: { init: { hostVG: [{ first: true }, { path: '/dev/sda' }] } } },
    { storage: { init: { hostVG: [{ path: '/dev/sda' }], appVG: [{ first: true }] } } },
    { iscsi: { target: { port: 3260 } } },
    { engine: { port: 443 } },
    { network: { bootif: { nic: 'link' } } },
    { network: { bootif: { mac: '00:16:3E:12:34:57' } } },
    { security: { adminPasswordHash: 'secret' } },
    { keyboard: 'de latin1' },
    { keyboard: '' },
    { logging: { logrotateMaxSize: 0 } },
    { logging: { logrotateMaxSize: 1048577 } },
    { logging: { logrotateMaxSize: 1.5 } },
  ];
  for (const c of invalid) t.true(validateNodeConfig(c).hasErrors, JSON.stringify(c));
  t.false(validateNodeConfig({ bootloaderArgs: ['console=ttyS0', '"a b"', 'iphone', 'x="ip=1"'] }).hasErrors);
});

test('formatCmdline writes the canonical oVirt arguments', (t) => {
  const config: NodeConfig = {
    hostname: 'node1.example.com',
    keyboard: 'de-nodeadkeys',
    network: {
      bootif: { mac: '00:16:3e:12:34:57' },
      ip: { mode: 'static', address: '10.0.0.5', netmask: '255.255.255.0', gateway: '10.0.0.254' },
      dns: ['10.0.0.1', '10.0.0.2'],
    },
    storage: { init: { hostVG: [{ first: true }] }, volumes: { swap: 2048, data: -1 } },
    boot: { action: 'upgrade', localBoot: true, stateless: false },
    logging: { syslog: { server: 'logs.example.com' }, logrotateMaxSize: 2048 },
    engine: { server: '2001:db8::7', port: 443 },
    bootloaderArgs: ['console=ttyS0,115200n8', 'foo="a b"'],
  };
  t.is(
    formatCmdline(config),
    'local_boot stateless=0 hostname=node1.example.com keyboard=de-nodeadkeys BOOTIF=01-00-16-3e-12-34-57 ip=10.0.0.5 netmask=255.255.255.0 gateway=10.0.0.254 dns=10.0.0.1,10.0.0.2 storage_init storage_vol=2048,Swap:-1,Data syslog=logs.example.com logrotate_max_size=2048 management_server=[2001:db8::7]:443 console=ttyS0,115200n8 foo="a b"',
  );
  t.deepEqual(parse(formatCmdline(config)).config, config);
  t.is(formatCmdline({}), '');
});

test('formatCmdline refuses an invalid config', (t) => {
  const err = t.throws(() => formatCmdline({ network: { vlan: { id: 0 } } }));
  t.regex(err?.message ?? '', /not a valid NodeConfig/);
});

test('every claimed argument has a parser and the schema keeps it out of bootloaderArgs', (t) => {
  for (const name of CLAIMED_ARGS) {
    t.deepEqual(parse(name).unknown, [], name);
    t.true(validateNodeConfig({ bootloaderArgs: [`${name}=x`] }).hasErrors, name);
    t.false(validateNodeConfig({ bootloaderArgs: [`${name}x=x`] }).hasErrors, name);
  }
});

// ---------------------------------------------------------------------------------------------
// The address patterns agree with node:net

test('the IPv4 and IPv6 patterns agree with node:net on random strings', (t) => {
  const r = rng(7);
  const alphabet = '0123456789abcdefABCDEF:::::...';
  const mismatches: string[] = [];
  const samples = [
    '::',
    '::1',
    '1::',
    '1:2:3:4:5:6:7::',
    '::ffff:1.2.3.4',
    '1:2:3:4:5:6:1.2.3.4',
    '1::2:3:4:5:6:7',
  ];
  for (let i = 0; i < 20000; i++) {
    samples.push(i % 2 ? r.string(alphabet, r.int(1, 24)) : randomIpv6(r));
  }
  for (const s of samples) {
    if (valuePattern('ipv6').test(s) !== isIPv6(s)) mismatches.push(`ipv6 ${s}`);
    if (valuePattern('ipv4').test(s) !== isIPv4(s)) mismatches.push(`ipv4 ${s}`);
  }
  for (let i = 0; i < 5000; i++) {
    const s = Array.from({ length: 4 }, () => String(r.int(0, 300))).join('.');
    if (valuePattern('ipv4').test(s) !== isIPv4(s)) mismatches.push(`ipv4 ${s}`);
  }
  t.deepEqual(mismatches.slice(0, 10), []);
});

// ---------------------------------------------------------------------------------------------
// The CLI

const BIN = cli('hvnode-node');

async function run(args: string[]) {
  return execa('node', [BIN, 'cmdline', ...args], { reject: false, stripFinalNewline: false });
}

test('cli: --json prints exactly {config, kernel, unknown, errors} and exits 0 without errors', async (t) => {
  const r = await run([
    '--cmdline',
    'BOOTIF=01-00-16-3e-12-34-57 hostname=n1 quiet crashkernel=128M hvnode.slot=Root',
    '--json',
  ]);
  t.is(r.exitCode, 0, String(r.stderr));
  t.is(r.stderr, '');
  const out = JSON.parse(String(r.stdout));
  t.deepEqual(Object.keys(out), ['config', 'kernel', 'unknown', 'errors']);
  t.deepEqual(out, {
    config: {
      hostname: 'n1',
      network: { bootif: { mac: '00:16:3e:12:34:57' } },
      bootloaderArgs: ['quiet', 'crashkernel=128M', 'hvnode.slot=Root'],
    },
    kernel: { slot: 'Root' },
    unknown: ['quiet'],
    errors: [],
  });
});

test('cli: a malformed value exits 65, with the errors in the JSON and on stderr', async (t) => {
  const r = await run(['--cmdline', 'vlan=abc hostname=n1', '--json']);
  t.is(r.exitCode, 65);
  const out = JSON.parse(String(r.stdout));
  t.deepEqual(out.errors, [
    {
      severity: 'error',
      arg: 'vlan=abc',
      message: 'expected a VLAN id 1-4094, optionally :NIC (vlan=ID[:NIC])',
    },
  ]);
  t.deepEqual(out.config, { hostname: 'n1' });
  // the argument once (it used to be "cmdline: vlan: vlan=abc: …")
  t.is(
    r.stderr,
    'hvnode-node cmdline: vlan=abc: error: expected a VLAN id 1-4094, optionally :NIC (vlan=ID[:NIC])\n',
  );
});

test('cli: a rule that spans arguments is reported at the argument it blames, with a hint', async (t) => {
  const r = await run(['--cmdline', 'bond=bond0:eth0,eth1:mode=1 vlan=5:eth1 netconsole=logs.example.com']);
  t.is(r.exitCode, 65);
  t.is(
    r.stderr,
    [
      'hvnode-node cmdline: netconsole=logs.example.com: error: expected ADDRESS[:PORT]: netconsole needs the IP address of the log server, not a name',
      '  hint: give netconsole=ADDRESS[:PORT] ([IPv6]:PORT)',
      'hvnode-node cmdline: vlan=5:eth1: error: eth1 is a slave of the bond bond0',
      '  hint: put the VLAN on the bond: vlan=5:bond0',
      '',
    ].join('\n'),
  );
  t.regex(r.stdout, /network\.bond\.name: bond0/);
  t.notRegex(r.stdout, /vlan|netconsole/);
});

test('cli: a bad keyboard= or logrotate_max_size= exits 65, naming the argument', async (t) => {
  const r = await run(['--cmdline', 'keyboard=de_CH logrotate_max_size=2G keyboard=fr']);
  t.is(r.exitCode, 65);
  t.is(
    r.stderr,
    [
      'hvnode-node cmdline: keyboard=de_CH: error: expected a keyboard layout as XKB names it, optionally -VARIANT (e.g. us, de, de-nodeadkeys)',
      'hvnode-node cmdline: logrotate_max_size=2G: error: expected a size in KB from 1 to 1048576 (1 GiB), e.g. 1024',
      '',
    ].join('\n'),
  );
  t.regex(r.stdout, /keyboard: fr/);
});

test('cli: without --json a readable summary, unknown arguments listed', async (t) => {
  const r = await run(['--cmdline', 'storage_init=/dev/sda dns=1.1.1.1,8.8.8.8 rd.live.image ip=999']);
  t.is(r.exitCode, 65);
  t.is(
    r.stdout,
    [
      'NodeConfig:',
      '  network.dns: 1.1.1.1 8.8.8.8',
      '  storage.init.hostVG[0].path: /dev/sda',
      '  bootloaderArgs: rd.live.image',
      'Unknown arguments (kept for the bootloader):',
      '  rd.live.image',
      '',
    ].join('\n'),
  );
  t.regex(String(r.stderr), /^hvnode-node cmdline: ip=999: error: expected dhcp, off/);
});

test('cli: garbled input exits 0 or 65, never with a stack trace', async (t) => {
  const garbage = [
    '"',
    '=',
    '==="""',
    '\u0001\u0002\u001b[2J',
    'a"b c',
    `${'x='.repeat(5000)}`,
    'BOOTIF="',
    'é ü \u00a0 \u2028',
  ];
  for (const g of garbage) {
    const r = await run(['--cmdline', g]);
    t.true(r.exitCode === 0 || r.exitCode === 65, `${JSON.stringify(g)}: ${r.exitCode} ${r.stderr}`);
    t.notRegex(String(r.stderr), /\n\s+at /, JSON.stringify(g));
    // a command line can't drive the terminal through the summary
    t.false(String(r.stdout).includes('\u001b'), JSON.stringify(g));
  }
});

test('cli: a stray positional argument is a usage error (65)', async (t) => {
  const r = await run(['hostname=x']);
  t.is(r.exitCode, 65);
  t.regex(String(r.stderr), /unexpected argument "hostname=x"/);
});

// ---------------------------------------------------------------------------------------------
// Property tests (seeded, so a failure is reproducible)

interface Rng {
  next(): number;
  int(lo: number, hi: number): number;
  bool(p?: number): boolean;
  pick<T>(xs: readonly T[]): T;
  string(alphabet: string, length: number): string;
}

/** Random NodeConfig material from a seed (a failing case is replayed from it). */
function rng(seed: number): Rng {
  const next = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T;
  return {
    next,
    int,
    bool: (p = 0.5) => next() < p,
    pick,
    string: (alphabet, length) =>
      Array.from({ length }, () => alphabet[int(0, alphabet.length - 1)]).join(''),
  };
}

const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const ALNUM = `${LOWER}ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789`;
const CRYPT_CHARS = `${ALNUM}./`;
const HEX = '0123456789abcdef';

function label(r: Rng): string {
  const n = r.int(1, r.bool(0.05) ? 63 : 10);
  if (n === 1) return r.string(LOWER, 1);
  return r.string(ALNUM, 1) + r.string(`${ALNUM}-`, n - 2) + r.string(LOWER, 1);
}

function randomHostname(r: Rng): string {
  return Array.from({ length: r.int(1, 4) }, () => label(r)).join('.');
}

function randomIpv4(r: Rng): string {
  return Array.from({ length: 4 }, () => String(r.int(0, 255))).join('.');
}

function randomIpv6(r: Rng): string {
  const groups = Array.from({ length: 8 }, () => r.int(0, 0xffff).toString(16));
  const withV4 = r.bool(0.2);
  const n = withV4 ? 6 : 8;
  const parts = groups.slice(0, n).map((g) => (r.bool() ? g.toUpperCase() : g));
  let text: string;
  if (r.bool(0.6)) {
    const start = r.int(0, n - 1);
    const len = r.int(1, n - start);
    const left = parts.slice(0, start).join(':');
    const right = parts.slice(start + len).join(':');
    text = `${left}::${right}`;
    if (withV4) text += right === '' ? randomIpv4(r) : `:${randomIpv4(r)}`;
  } else {
    text = parts.join(':') + (withV4 ? `:${randomIpv4(r)}` : '');
  }
  return text;
}

function randomHost(r: Rng): string {
  const k = r.int(0, 2);
  return k === 0 ? randomHostname(r) : k === 1 ? randomIpv4(r) : randomIpv6(r);
}

function randomNic(r: Rng): string {
  return (
    r.pick(['eth', 'enp', 'em', 'bond', 'ens', 'p']) + r.int(0, 99) + (r.bool(0.2) ? `s${r.int(0, 9)}` : '')
  );
}

function randomPort(r: Rng): number {
  return r.int(1, 65535);
}

function maybe<T>(r: Rng, make: () => T, p = 0.5): T | undefined {
  return r.bool(p) ? make() : undefined;
}

type Obj = Record<string, unknown>;

/** Drops undefined values; undefined when the object is left empty (as NodeConfig requires). */
function section(o: Obj): Obj | undefined {
  const entries = Object.entries(o).filter(([, v]) => v !== undefined);
  return entries.length > 0 ? Object.fromEntries(entries) : undefined;
}

function randomDisk(r: Rng) {
  const bus = r.pick(['ata', 'scsi', 'usb', 'cciss'] as const);
  return r.bool()
    ? {
        path: `/dev/${r.pick(['sda', 'vdb', 'cciss/c0d0', 'disk/by-id/ata-QEMU_HARDDISK_QM0000', 'mapper/mpath-a:1'])}${r.int(0, 9)}`,
      }
    : r.bool()
      ? { bus }
      : { bus, serial: r.bool(0.2) ? 'ALL' : `${r.string(ALNUM, r.int(1, 20))}-0:${r.int(0, 3)}` };
}

function randomUrl(r: Rng): string {
  const host = r.pick([randomHostname(r), randomIpv4(r), `[${randomIpv6(r)}]`]);
  const port = r.bool() ? `:${randomPort(r)}` : '';
  const path = r.bool()
    ? `/${r.string(`${ALNUM}/-._~%`, r.int(0, 20))}${r.bool() ? '?host=@HOSTNAME@&x=1' : ''}`
    : '';
  return `${r.pick(['http', 'https'])}://${host}${port}${path}`;
}

function randomCrypt(r: Rng): string {
  return r.pick([
    () => `$6$${r.string(CRYPT_CHARS, r.int(0, 16))}$${r.string(CRYPT_CHARS, 86)}`,
    () => `$5$rounds=${r.int(1000, 999999)}$${r.string(CRYPT_CHARS, 8)}$${r.string(CRYPT_CHARS, 43)}`,
    () => `$1$${r.string(CRYPT_CHARS, 8)}$${r.string(CRYPT_CHARS, 22)}`,
    () => `$2b$${r.int(10, 31)}$${r.string(CRYPT_CHARS, 53)}`,
    () => `$y$j9T$${r.string(CRYPT_CHARS, 22)}$${r.string(CRYPT_CHARS, 43)}`,
  ])();
}

function randomIqn(r: Rng): string {
  return `iqn.${r.int(1990, 2030)}-${String(r.int(1, 12)).padStart(2, '0')}.${randomHostname(r)}${r.bool() ? `:${r.string(`${LOWER}0123456789.-`, r.int(1, 12))}` : ''}`;
}

/** Something an unknown argument may look like (never a claimed name). */
function randomBootloaderArg(r: Rng): string {
  const key = r.pick([
    'console',
    'crashkernel',
    'quiet',
    'rd.live.image',
    'root',
    'BOOT_IMAGE',
    'x_y',
    'ipx',
    'Hostname',
    '',
  ]);
  const value = r.pick([
    '',
    '=',
    `=${r.string(`${ALNUM}:,;/.=`, r.int(1, 12))}`,
    `="${r.string(`${ALNUM} \t=,`, r.int(0, 12))}"`,
    `=a"b c"d`,
  ]);
  const arg = `${key}${value}`;
  if (arg === '') return '""';
  // a whole argument in quotes ("a=b c") only when it holds none itself
  return r.bool(0.1) && !arg.includes('"') ? `"${arg}"` : arg;
}

function randomConfig(r: Rng): NodeConfig {
  const action = maybe(r, () =>
    r.pick(['install', 'upgrade', 'reinstall', 'uninstall', 'firstboot', 'none'] as const),
  );
  const strong =
    action === 'upgrade' || action === 'reinstall' || action === 'firstboot' || action === 'uninstall';
  const ipv6Static = r.bool(0.3);
  const kdump = r.bool(0.3) ? { nfs: `${randomHostname(r)}:/${r.string(ALNUM, r.int(0, 8))}` } : undefined;
  const config: Obj = {
    hostname: maybe(r, () => randomHostname(r)),
    keyboard: maybe(r, () =>
      r.bool()
        ? r.pick(['us', 'gb', 'de', 'fr', 'ch', 'jp', 'latam'])
        : `${r.string(LOWER, r.int(2, 8))}-${r.string(ALNUM, 1)}${r.bool() ? `${r.string(`${ALNUM}_-`, r.int(0, 30))}${r.string(ALNUM, 1)}` : ''}`,
    ),
    network: section({
      bootif: maybe(r, () =>
        r.pick([
          { mac: Array.from({ length: 6 }, () => r.string(HEX, 2)).join(':') },
          { nic: randomNic(r) },
          { link: true },
        ]),
      ),
      ip: maybe(r, () =>
        r.bool()
          ? { mode: r.pick(['dhcp', 'off'] as const) }
          : section({
              mode: 'static',
              address: randomIpv4(r),
              netmask: maybe(r, () =>
                r.pick(['255.255.255.0', '255.255.0.0', '255.255.255.252', '128.0.0.0']),
              ),
              gateway: maybe(r, () => randomIpv4(r)),
            }),
      ),
      ipv6: maybe(r, () =>
        ipv6Static
          ? section({
              mode: 'static',
              address: randomIpv6(r),
              prefix: maybe(r, () => r.int(1, 128)),
              gateway: maybe(r, () => randomIpv6(r)),
            })
          : { mode: r.pick(['auto', 'dhcp'] as const) },
      ),
      dns: maybe(r, () =>
        Array.from({ length: r.int(1, 3) }, () => (r.bool() ? randomIpv4(r) : randomIpv6(r))),
      ),
      ntp: maybe(r, () => Array.from({ length: r.int(1, 3) }, () => randomHost(r))),
      vlan: maybe(r, () => section({ id: r.int(1, 4094), nic: maybe(r, () => randomNic(r)) })),
      bond: maybe(r, () =>
        section({
          name: `bond${r.int(0, 9)}`,
          slaves: Array.from({ length: r.int(1, 3) }, () => randomNic(r)),
          options: maybe(r, () =>
            Array.from({ length: r.int(1, 3) }, () =>
              r.pick(['mode=802.3ad', 'miimon=100', 'xmit_hash_policy=layer3+4', 'arp_ip_target=10.0.0.1']),
            ),
          ),
        }),
      ),
    }),
    storage: section({
      init: maybe(r, () =>
        section({
          hostVG: r.bool(0.3) ? [{ first: true }] : Array.from({ length: r.int(1, 3) }, () => randomDisk(r)),
          appVG: maybe(r, () => Array.from({ length: r.int(1, 2) }, () => randomDisk(r))),
        }),
      ),
      volumes: maybe(r, () =>
        section({
          efi: maybe(r, () => r.int(0, 1024)),
          boot: maybe(r, () => r.int(0, 1024)),
          swap: maybe(r, () => r.int(0, 65536)),
          root: maybe(r, () => r.int(0, 4096)),
          config: maybe(r, () => r.int(0, 100)),
          logging: maybe(r, () => r.int(0, 8192)),
          data: maybe(r, () => r.int(-1, 1_000_000)),
          swap2: maybe(r, () => r.int(0, 2 ** 31 - 1)),
          data2: maybe(r, () => r.int(-1, 100)),
        }),
      ),
      swapEncrypt: maybe(r, () =>
        section({
          swap: maybe(r, () => r.pick(['aes-cbc-essiv:sha256', 'aes-xts-plain64', 'serpent-xts-plain'])),
          swap2: maybe(r, () => r.pick(['aes-cbc-essiv:sha256', 'twofish-cbc-plain'])),
        }),
      ),
      overcommit: maybe(r, () => r.pick([r.next() * 100, r.int(0, 20) / 10, 5e-7, 0, 100])),
      wipeFakeraid: maybe(r, () => r.bool()),
    }),
    boot: section({
      action,
      localBoot: strong && r.bool(0.3) ? true : undefined,
      stateless: maybe(r, () => r.bool()),
      standalone: maybe(r, () => r.bool()),
      rescue: maybe(r, () => r.bool()),
      runtimeMode: maybe(r, () => r.pick(['ovirt', 'managed', 'none'] as const)),
    }),
    security: section({
      adminPasswordHash: maybe(r, () => randomCrypt(r)),
      rootPasswordHash: maybe(r, () => randomCrypt(r)),
      sshPasswordAuth: maybe(r, () => r.bool()),
    }),
    logging: section({
      syslog: maybe(r, () => section({ server: randomHost(r), port: maybe(r, () => randomPort(r)) })),
      netconsole: maybe(r, () =>
        section({ server: r.bool() ? randomIpv4(r) : randomIpv6(r), port: maybe(r, () => randomPort(r)) }),
      ),
      logrotateMaxSize: maybe(r, () => r.pick([1, 1024, r.int(1, 1048576), 1048576])),
    }),
    kdump:
      kdump ??
      maybe(r, () => ({ ssh: `root@${r.pick([randomHostname(r), randomIpv4(r), `[${randomIpv6(r)}]`])}` })),
    monitoring: section({
      collectd: maybe(r, () => section({ server: randomHost(r), port: maybe(r, () => randomPort(r)) })),
    }),
    iscsi: section({
      initiatorName: maybe(r, () => r.pick([randomIqn(r), `eui.${r.string(HEX.toUpperCase(), 16)}`])),
      target: maybe(r, () => {
        const server = maybe(r, () => randomHost(r));
        return section({
          server,
          port: server === undefined ? undefined : maybe(r, () => randomPort(r)),
          name: maybe(r, () => randomIqn(r)),
        });
      }),
      install: maybe(r, () => r.bool()),
      initDisk: maybe(r, () => `/dev/sd${r.string(LOWER, 1)}`),
    }),
    engine: maybe(r, () =>
      section({
        server: randomHost(r),
        port: maybe(r, () => randomPort(r)),
        fingerprint: maybe(r, () =>
          Array.from({ length: r.pick([20, 32]) }, () => r.string('0123456789ABCDEFabcdef', 2)).join(':'),
        ),
      }),
    ),
    configServer: section({
      url: maybe(r, () => randomUrl(r)),
      key: maybe(r, () => (r.bool() ? `${r.string(`${ALNUM}+/`, 43)}=` : `sha256:${r.string(HEX, 64)}`)),
    }),
    localBootTrigger: maybe(r, () => randomUrl(r)),
    bootloaderArgs: maybe(r, () => Array.from({ length: r.int(1, 6) }, () => randomBootloaderArg(r))),
  };
  // a VLAN on one of the bond's slaves breaks a rule (rules.ts): put it on the bond instead
  const net = config.network as NodeConfig['network'];
  if (net?.bond?.slaves.includes(net.bond.name)) {
    const { name } = net.bond;
    net.bond.slaves = [...net.bond.slaves.filter((nic) => nic !== name), `${name}s0`];
  }
  if (net?.vlan?.nic && net.bond?.slaves.includes(net.vlan.nic)) net.vlan.nic = net.bond.name;
  // checked against the schema by the tests that use it
  return (section(config) ?? {}) as NodeConfig;
}

test('property: ~500 random valid NodeConfigs round-trip through formatCmdline and parseCmdline', (t) => {
  const r = rng(20240501);
  const failures: string[] = [];
  for (let i = 0; i < 500; i++) {
    const config = randomConfig(r);
    const report = validateNodeConfig(config);
    if (report.hasErrors) {
      failures.push(
        `generator made an invalid config #${i}: ${JSON.stringify(report.errors)} ${JSON.stringify(config)}`,
      );
      continue;
    }
    const cmdline = formatCmdline(config);
    const back = parseCmdline(cmdline);
    if (
      back.errors.length > 0 ||
      JSON.stringify(sortKeys(back.config)) !== JSON.stringify(sortKeys(config))
    ) {
      failures.push(
        `#${i}: ${cmdline}\n  errors: ${JSON.stringify(back.errors)}\n  got ${JSON.stringify(back.config)}\n  want ${JSON.stringify(config)}`,
      );
    }
  }
  t.deepEqual(failures.slice(0, 3), []);
});

test('property: the round trip of a config with every section set', (t) => {
  // the random configs above leave each section out half the time; check one that has them all
  const r = rng(99);
  let full: NodeConfig = {};
  const sections = Object.keys(nodeConfigSchema.properties).length;
  for (let i = 0; i < 10000 && Object.keys(full).length < sections; i++) {
    const c = randomConfig(r);
    if (Object.keys(c).length > Object.keys(full).length && !validateNodeConfig(c).hasErrors) full = c;
  }
  t.true(Object.keys(full).length >= sections - 2, JSON.stringify(Object.keys(full)));
  t.deepEqual(parseCmdline(formatCmdline(full)).config, full);
});

function sortKeys(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(sortKeys);
  if (x !== null && typeof x === 'object') {
    return Object.fromEntries(
      Object.entries(x)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, sortKeys(v)]),
    );
  }
  return x;
}

/** A random command line: bytes, separators, quotes, claimed names with good and bad values. */
function randomCmdline(r: Rng): string {
  const noise = ' \t\n\r\v\f"=,:;/[]\\\u0000\u0001\u001b\u007f\u00a0\u2028é€\ud800\udfff-_.@$';
  const parts: string[] = [];
  const n = r.int(0, 12);
  for (let i = 0; i < n; i++) {
    const kind = r.int(0, 5);
    if (kind === 0) parts.push(r.string(noise + ALNUM, r.int(0, 30)));
    else if (kind === 1) parts.push(`${r.pick(CLAIMED_ARGS)}=${r.string(noise + ALNUM, r.int(0, 20))}`);
    else if (kind === 2) parts.push(r.pick(CLAIMED_ARGS));
    else if (kind === 3) parts.push(formatCmdline(randomConfig(r)));
    else if (kind === 4) parts.push(randomBootloaderArg(r));
    else
      parts.push(
        `${r.pick(CLAIMED_ARGS)}=${r.pick(['"', '"a b"', '', '=', ':', ',', ';', '[', '-1', '0', 'x'.repeat(300)])}`,
      );
  }
  return parts.join(r.pick([' ', '  ', '\t', '', '"', '\n']));
}

test('property: ~2000 random command lines never throw and always give a schema-valid config', (t) => {
  const r = rng(4242);
  const failures: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const cmdline = randomCmdline(r);
    try {
      const result = parseCmdline(cmdline);
      const report = validateNodeConfig(result.config);
      if (report.hasErrors)
        failures.push(`invalid: ${JSON.stringify(cmdline)} ${JSON.stringify(report.errors)}`);
      const kept = result.config.bootloaderArgs ?? [];
      if (!result.unknown.every((u) => kept.includes(u)))
        failures.push(`unknown not kept: ${JSON.stringify(cmdline)}`);
      const known = [...CLAIMED_ARGS, ...Object.keys(KERNEL_ARGUMENTS)];
      for (const e of result.errors) {
        const name = e.arg?.split('=')[0] ?? '';
        if (e.severity !== 'error' || !known.includes(name) || e.message.startsWith(`${name}=`)) {
          failures.push(`error shape: ${JSON.stringify(e)}`);
        }
      }
      // whatever was read is itself written and read back unchanged
      if (!report.hasErrors) {
        const again = parseCmdline(formatCmdline(result.config));
        if (
          JSON.stringify(sortKeys(again.config)) !== JSON.stringify(sortKeys(result.config)) ||
          again.errors.length > 0
        ) {
          failures.push(`not stable: ${JSON.stringify(cmdline)}`);
        }
      }
    } catch (err) {
      failures.push(`threw on ${JSON.stringify(cmdline)}: ${(err as Error).stack}`);
    }
  }
  t.deepEqual(failures.slice(0, 3), []);
});

test('property: huge and pathological input is read in linear time', (t) => {
  const r = rng(1);
  const cases = [
    `a="${' '.repeat(2_000_000)}x`,
    `hostname=${'a.'.repeat(500_000)}`,
    `ipv6=${'1:'.repeat(300_000)}`,
    Array.from({ length: 50_000 }, () => randomCmdline(r).slice(0, 40)).join(' '),
    `dns=${'1.1.1.1,'.repeat(100_000)}`,
    '"'.repeat(1_000_001),
  ];
  for (const c of cases) {
    const started = Date.now();
    const result = parseCmdline(c);
    t.false(validateNodeConfig(result.config).hasErrors);
    t.true(Date.now() - started < 5000, `${c.slice(0, 20)}… took ${Date.now() - started} ms`);
  }
});
