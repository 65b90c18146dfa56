// The screens' view-models without a terminal: what they refuse, and the NodeConfig they make
// (checked by NodeConfig's own validator and by the settings files autoinstall writes from it).

import test from 'ava';
import { HvError } from '../../common/index.ts';
import type { DiskFact } from '../../node-runtime/index.ts';
import {
  formatCmdline,
  parseCmdline,
  planLayout,
  settingsFiles,
  validateNodeConfig,
  valuePattern,
} from '../../node-runtime/index.ts';
import { sha512Crypt } from '../../tui/crypt.ts';
import { field, set } from '../../tui/model/form.ts';
import { disksInUse, Installer, KEYBOARDS } from '../../tui/model/installer.ts';
import { configOf, engineScreen, kdumpScreen, loggingScreen, networkScreen } from '../../tui/model/setup.ts';
import { pageKey } from '../../tui/ui/app.ts';

const GiB = 2 ** 30;
const disk = (name: string, gib: number, over: Partial<DiskFact> = {}): DiskFact => ({
  name,
  path: `/dev/${name}`,
  sizeBytes: gib * GiB,
  removable: false,
  readOnly: false,
  model: 'QEMU HARDDISK',
  serial: `SN-${name}`,
  ids: [`ata-QEMU_HARDDISK_SN-${name}`],
  partitions: [],
  bus: 'ata',
  ...over,
});

const facts = () => ({
  disks: [disk('sda', 20), disk('sdb', 1), disk('sdc', 8)],
  bootMedium: '/dev/sdb',
  ramMiB: 2048,
  imageVersion: '0.1.0',
});

test('sha512Crypt gives what openssl passwd -6 gives', (t) => {
  // openssl passwd -6 -salt hvnodetest node-admin
  t.is(
    sha512Crypt('node-admin', 'hvnodetest'),
    '$6$hvnodetest$Ssqs5nX83l0gUzMViXZV2CkU3rggXNxBdPNTdD9PsKOccW/Fv7NZ1XGD9Gdo3lRSJ3NtIFsrbCbi8tIG8qUgT0',
  );
});

test('Welcome: a major upgrade is refused, a minor one offered, reinstall always', (t) => {
  const major = new Installer({ ...facts(), installedVersion: '1.4.0', imageVersion: '2.0.0' });
  const opts = field(major.welcome, 'action').options ?? [];
  t.regex(opts[0]?.refused ?? '', /uninstall the existing version first/);
  t.is(major.action, 'reinstall');
  set(major.welcome, 'action', 'upgrade');
  t.false(major.checkWelcome());
  t.regex(field(major.welcome, 'action').error ?? '', /refused/);
  const minor = new Installer({ ...facts(), installedVersion: '2.0.0', imageVersion: '2.1.0' });
  t.is(field(minor.welcome, 'action').options?.[0]?.label, 'Upgrade hvnode 2.0.0 to 2.1.0');
  t.true(minor.checkWelcome());
  t.deepEqual(minor.config(), { boot: { action: 'upgrade' } });
});

test('Boot device: the boot medium is refused on the screen, a typed path must be a disk', (t) => {
  const i = new Installer(facts());
  t.is(
    field(i.bootDevice, 'disk').options?.find((o) => o.value === '/dev/sdb')?.refused,
    'the medium this node booted from',
  );
  set(i.bootDevice, 'disk', '/dev/sdb');
  t.false(i.checkBootDevice());
  t.regex(field(i.bootDevice, 'disk').error ?? '', /booted from/);
  set(i.bootDevice, 'disk', 'other');
  set(i.bootDevice, 'path', '/dev/nope');
  t.false(i.checkBootDevice());
  t.is(field(i.bootDevice, 'path').error, '/dev/nope: no such disk');
  set(i.bootDevice, 'path', '/dev/sdc');
  t.true(i.checkBootDevice());
});

test('Boot device: a disk holding data is refused for Install, taken for Reinstall (checkDisksFree)', (t) => {
  const f = facts();
  const sda = f.disks[0] as DiskFact;
  const contents = { '/dev/sda': { disk: sda, signatures: [{ device: 'sda', type: 'gpt' }] } };
  const i = new Installer({ ...f, contents });
  t.is(field(i.bootDevice, 'disk').value, '/dev/sdc', 'a disk holding data is not preselected');
  set(i.bootDevice, 'disk', '/dev/sda');
  t.false(i.checkBootDevice());
  t.regex(field(i.bootDevice, 'disk').error ?? '', /\/dev\/sda holds data \(gpt\).*Reinstall/);
  const r = new Installer({ ...f, contents, installedVersion: '0.1.0' });
  t.is(r.action, 'reinstall');
  set(r.bootDevice, 'disk', '/dev/sda');
  t.true(r.checkBootDevice());
});

test('Storage sizes: Swap defaults to oVirt formula; too much for the disk is refused there', (t) => {
  const i = new Installer(facts());
  t.is(field(i.sizes, 'swap').value, String(2048 + 1024));
  t.true(i.checkBootDevice());
  t.true(i.checkSizes());
  t.regex(i.sizes.output?.[0] ?? '', /Data gets/);
  set(i.sizes, 'logging', '50000');
  t.false(i.checkSizes());
  t.truthy(field(i.sizes, 'logging').error);
  set(i.sizes, 'logging', 'x');
  t.false(i.checkSizes());
  t.is(field(i.sizes, 'logging').error, 'MB (a whole number)');
});

test('Console password: mismatch and weak passwords inline; the NodeConfig validates', (t) => {
  const i = new Installer(facts());
  i.checkBootDevice();
  set(i.password, 'password', 'Secret-123');
  set(i.password, 'confirm', 'Secret-124');
  t.false(i.checkPasswordPage());
  t.is(field(i.password, 'confirm').error, 'the passwords do not match');
  for (const [pw, re] of [
    ['short1', /too short/],
    ['aaaaaaaaaa', /weak/],
    ['admin12345', /user name/],
  ] as const) {
    set(i.password, 'password', pw);
    set(i.password, 'confirm', pw);
    t.false(i.checkPasswordPage());
    t.regex(field(i.password, 'password').error ?? '', re);
  }
  set(i.password, 'password', 'Node-Pass-42');
  set(i.password, 'confirm', 'Node-Pass-42');
  set(i.password, 'hostname', 'node1.example.com');
  t.true(i.checkPasswordPage());
  const config = i.config('fixedsalt');
  t.false(validateNodeConfig(config).hasErrors);
  t.deepEqual(config.storage?.init, { hostVG: [{ path: '/dev/sda' }] });
  t.is(config.boot?.action, 'install');
  t.is(config.security?.adminPasswordHash, sha512Crypt('Node-Pass-42', 'fixedsalt'));
});

test('Keyboard: a layout other than the image has goes into the NodeConfig and its settings', (t) => {
  // every layout offered is one NodeConfig takes
  for (const o of KEYBOARDS) t.true(valuePattern('keyboard').test(o.value), o.value);
  const i = new Installer(facts());
  t.is(field(i.keyboard, 'layout').value, 'us');
  i.checkBootDevice();
  // the image's layout (us, the builder's default) needs no file in /config
  t.false('keyboard' in i.config());
  set(i.keyboard, 'layout', 'de');
  const config = i.config();
  t.is(config.keyboard, 'de');
  // through the command line the TUI runs autoinstall with, into /etc/default/keyboard
  const back = parseCmdline(formatCmdline(config));
  t.deepEqual(back.errors, []);
  const file = settingsFiles(back.config, { shadow: '', passwd: '' }).find(
    (f) => f.path === '/etc/default/keyboard',
  );
  t.regex(file?.content ?? '', /^XKBLAYOUT="de"$/m);
  // an image with another layout: preselected, and us is then a choice to keep
  const gb = new Installer({ ...facts(), keyboard: 'gb' });
  t.is(field(gb.keyboard, 'layout').value, 'gb');
  gb.checkBootDevice();
  t.false('keyboard' in gb.config());
  set(gb.keyboard, 'layout', 'us');
  t.is(gb.config().keyboard, 'us');
  // a layout of the image's that the list lacks is offered first
  const variant = new Installer({ ...facts(), keyboard: 'de-nodeadkeys' });
  const f = field(variant.keyboard, 'layout');
  t.is(f.value, 'de-nodeadkeys');
  t.is(f.options?.[0]?.value, 'de-nodeadkeys');
  t.is(f.cursor, 0);
  // an unusable image value is ignored: us
  for (const keyboard of ['de latin1', ''])
    t.is(field(new Installer({ ...facts(), keyboard }).keyboard, 'layout').value, 'us', keyboard);
});

test('Network: static fields appear with Static; bad values are marked; the config carries them', (t) => {
  const s = networkScreen([{ name: 'eth0', mac: '52:54:00:12:34:56', state: 'up', addresses: [] }]);
  s.load({});
  t.false(field(s.page, 'ip').visible?.());
  set(s.page, 'proto', 'static');
  t.true(field(s.page, 'ip').visible?.());
  set(s.page, 'ip', '10.0.0.300');
  set(s.page, 'dns1', 'ns1');
  set(s.page, 'vlan', '5000');
  t.is(configOf(s, {}), undefined);
  t.regex(field(s.page, 'ip').error ?? '', /IPv4/);
  t.regex(field(s.page, 'dns1').error ?? '', /IP address/);
  t.regex(field(s.page, 'vlan').error ?? '', /1-4094/);
  set(s.page, 'ip', '10.0.0.5');
  set(s.page, 'netmask', '255.255.255.0');
  set(s.page, 'dns1', '10.0.0.1');
  set(s.page, 'vlan', '20');
  set(s.page, 'hostname', 'node2');
  const c = configOf(s, { engine: { server: 'engine.example.com' } });
  t.deepEqual(c, {
    engine: { server: 'engine.example.com' },
    hostname: 'node2',
    network: {
      bootif: { nic: 'eth0' },
      ip: { mode: 'static', address: '10.0.0.5', netmask: '255.255.255.0' },
      dns: ['10.0.0.1'],
      vlan: { id: 20 },
    },
  });
  const files = settingsFiles(c ?? {}, { shadow: '', passwd: '' }).map((f) => f.path);
  t.true(files.includes('/etc/systemd/network/10-hvnode.network'));
  t.true(files.includes('/etc/hostname'));
});

test('Logging, Kernel Dump, Engine: inline errors, then the NodeConfig sections', (t) => {
  const l = loggingScreen();
  l.load({});
  set(l.page, 'netconsolePort', '6666');
  set(l.page, 'syslogServer', 'logs.example.com');
  set(l.page, 'syslogPort', '99999');
  t.is(configOf(l, {}), undefined);
  t.is(field(l.page, 'syslogPort').error, 'a port is 1-65535');
  t.is(field(l.page, 'netconsoleServer').error, 'required');
  set(l.page, 'syslogPort', '1514');
  set(l.page, 'netconsoleServer', '192.0.2.9');
  // no logrotate size: none kept
  t.deepEqual(configOf(l, {})?.logging, {
    syslog: { server: 'logs.example.com', port: 1514 },
    netconsole: { server: '192.0.2.9', port: 6666 },
  });
  for (const bad of ['0', '1048577', '1k', '-1']) {
    set(l.page, 'logrotate', bad);
    t.is(configOf(l, {}), undefined, bad);
    t.is(field(l.page, 'logrotate').error, 'a size in KB, 1-1048576', bad);
  }
  set(l.page, 'logrotate', '2048');
  const logging = configOf(l, { hostname: 'n1' });
  t.deepEqual(logging, {
    hostname: 'n1',
    logging: {
      syslog: { server: 'logs.example.com', port: 1514 },
      netconsole: { server: '192.0.2.9', port: 6666 },
      logrotateMaxSize: 2048,
    },
  });
  const maxsize = settingsFiles(logging ?? {}, { shadow: '', passwd: '' }).find(
    (f) => f.path === '/etc/logrotate.d/00-hvnode-maxsize',
  );
  t.regex(maxsize?.content ?? '', /^maxsize 2048k$/m);
  // the saved value comes back; emptied, it is dropped (and with it the whole section here)
  l.load({ logging: { logrotateMaxSize: 512 } });
  t.is(field(l.page, 'logrotate').value, '512');
  t.is(field(l.page, 'syslogServer').value, '');
  set(l.page, 'logrotate', '');
  t.deepEqual(configOf(l, { logging: { logrotateMaxSize: 512 } }), {});
  const k = kdumpScreen();
  k.load({ kdump: { nfs: 'nfs.example.com:/crash' } });
  t.is(field(k.page, 'type').value, 'nfs');
  set(k.page, 'type', 'ssh');
  set(k.page, 'ssh', 'not a target');
  t.is(configOf(k, {}), undefined);
  set(k.page, 'ssh', 'root@dump.example.com');
  t.deepEqual(configOf(k, {})?.kdump, { ssh: 'root@dump.example.com' });
  set(k.page, 'type', 'local');
  t.is(configOf(k, { kdump: { ssh: 'root@x.example.com' } })?.kdump, undefined);
  const e = engineScreen();
  e.load({});
  set(e.page, 'server', 'engine.example.com');
  set(e.page, 'port', '0');
  t.is(configOf(e, {}), undefined);
  set(e.page, 'port', '8443');
  t.deepEqual(configOf(e, {})?.engine, { server: 'engine.example.com', port: 8443 });
});

test('keys: Tab moves, typing edits the focused text field, Space toggles a choice', (t) => {
  const s = networkScreen([]);
  const state = { focus: 0 };
  for (const ch of 'ab') pageKey(s.page, state, ch, { name: ch });
  t.is(field(s.page, 'hostname').value, 'ab');
  pageKey(s.page, state, undefined, { name: 'backspace' });
  t.is(field(s.page, 'hostname').value, 'a');
  for (let n = 0; n < 6; n++) pageKey(s.page, state, undefined, { name: 'tab' });
  pageKey(s.page, state, ' ', { name: 'space' });
  t.is(field(s.page, 'proto').value, 'static');
});

test('Boot device: a disk the running system uses is refused and never preselected', (t) => {
  const f = facts();
  // the host's root on LVM on sda2 (dm-0), swap on sdc1: resolved through the holders
  const inUse = disksInUse(
    f.disks.map((d) => (d.name === 'sda' ? { ...d, partitions: ['sda1', 'sda2'] } : d)),
    [
      { source: '/dev/mapper/vg-root', use: 'mounted at /' },
      { source: '/dev/sdc1', use: 'swap' },
      { source: '/dev/nothing', use: 'mounted at /x' },
    ],
    (s) => ({ '/dev/mapper/vg-root': 'dm-0', '/dev/sdc1': 'sdc1' })[s],
    (name) => (name === 'dm-0' ? ['sda2'] : []),
  );
  t.deepEqual(inUse, { '/dev/sda': 'mounted at /' });
  const disks = [disk('sda', 20), disk('sdb', 1), disk('sdc', 8, { partitions: ['sdc1'] }), disk('sdd', 8)];
  const i = new Installer({ ...f, disks, inUse: { '/dev/sda': 'mounted at /', '/dev/sdc': 'swap' } });
  const options = field(i.bootDevice, 'disk').options ?? [];
  t.is(options.find((o) => o.value === '/dev/sda')?.refused, 'in use: mounted at /');
  t.is(options.find((o) => o.value === '/dev/sdc')?.refused, 'in use: swap');
  t.is(field(i.bootDevice, 'disk').value, '/dev/sdd', 'the first disk free to take');
  set(i.bootDevice, 'disk', '/dev/sda');
  t.false(i.checkBootDevice());
  t.is(field(i.bootDevice, 'disk').error, '/dev/sda is in use: mounted at /');
  // nothing free at all: "Other device", not a disk in use
  const none = new Installer({ ...f, inUse: { '/dev/sda': 'mounted at /', '/dev/sdc': 'swap' } });
  t.is(field(none.bootDevice, 'disk').value, 'other');
});

test("a refusal of autoinstall's plan goes to the screen where the choice was made", (t) => {
  const i = new Installer({
    ...facts(),
    disks: [disk('sda', 20), disk('sdb', 1), disk('sdc', 8), disk('sdd', 8)],
  });
  t.true(i.checkBootDevice());
  set(i.hostVG, 'disks', '');
  field(i.hostVG, 'disks').values = ['/dev/sdd'];
  const refusal = (message: string, where = 'storage_init') => new HvError(message, { where });
  t.is(i.placeRefusal(refusal('refusing to install: /dev/sdd holds data (gpt)')), i.hostVG);
  t.is(field(i.hostVG, 'disks').error, 'refused by the install plan (see below)');
  t.regex(i.hostVG.output?.[0] ?? '', /^storage_init: refusing to install: \/dev\/sdd holds/);
  t.is(i.placeRefusal(refusal('refusing to install: /dev/sda holds data (gpt)')), i.bootDevice);
  t.is(i.placeRefusal(refusal('/dev/sda is the medium this node booted from')), i.bootDevice);
  // planLayout's own error, for real
  let layoutError: unknown;
  try {
    planLayout({ hostVG: [{ path: '/dev/sda', sizeBytes: 2 * GiB }], appVG: [], ramMiB: 2048, volumes: {} });
  } catch (err) {
    layoutError = err;
  }
  t.truthy(layoutError);
  t.is(i.placeRefusal(layoutError), i.sizes);
  t.truthy(field(i.sizes, 'data').error);
  t.is(
    i.placeRefusal(refusal('the kernel command line asks for what this image cannot do', 'autoinstall')),
    i.password,
  );
  // an upgrade has no disk screens: its refusals stay on Welcome
  const up = new Installer({ ...facts(), installedVersion: '0.0.9' });
  set(up.welcome, 'action', 'upgrade');
  t.is(up.placeRefusal(refusal('/dev/sda holds data')), up.welcome);
});
