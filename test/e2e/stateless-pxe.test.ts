// End to end: stateless nodes boot from our config server the way they do at a site. Inside a
// private network namespace (a bridge; nothing leaves it): dnsmasq hands out addresses and
// names pxelinux.0 on our TFTP server (DHCP only), hvnode-config-server serves TFTP and HTTPS
// from a data directory holding the test image, the engine stand-in takes registrations, and
// QEMU machines (their taps on the bridge) PXE-boot through their iPXE ROM. Each node fetches
// pxelinux.cfg/01-<its MAC> (config_server=, config_key=, BOOTIF), boots, gets DHCP on its boot
// NIC, fetches and verifies its bundle, takes its host name and overlay, registers, and reports
// every step to the server (admin node list).
// - node A: its bundle is there: "ready … stateless", registered under its own host name.
// - node B (side by side with A): no bundle yet: it waits, says why on the console, the server
//   lists the reason; once its bundle is put it goes on by itself and registers as B.
// - node C: its bundle was tampered with on the server: refused, reported as an error.

import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { pxelinuxMacName } from '../../common/index.ts';
import { cli, REPO, requireRoot, requireTools } from '../helpers/env.ts';
import { type NetnsProcess, type PrivateNet, privateNet, startDnsmasq } from '../helpers/netns.ts';
import { qemuArgs, visibleText } from '../helpers/qemu.ts';
import { testIso } from '../helpers/test-iso.ts';

const TOOLS = {
  mmdebstrap: 'mmdebstrap',
  mksquashfs: 'squashfs-tools',
  xorriso: 'xorriso',
  'qemu-system-x86_64': 'qemu-system-x86',
  dnsmasq: 'dnsmasq-base',
  ip: 'iproute2',
};
const NIC_ROM = '/usr/lib/ipxe/qemu/efi-virtio.rom';
const VERSION = '0.1.0';
const SUBNET = '10.213.7';
const ENGINE_PORT = 9443;
// PXE over TFTP (the initrd carries the ISO), then Node.js and DHCP on a TCG guest: slower than
// the other boot paths, more so with two guests on two cores
const DEADLINE = 480;
const LOGS = '/var/tmp/hvnode-e2e-stateless-logs';
const NODES = {
  a: { mac: '52:54:00:e2:5e:0a', uuid: '6e0d3a52-5e0a-4c1b-9f3e-000000000a0a', host: 'node-a.e2e.test' },
  b: { mac: '52:54:00:e2:5e:0b', uuid: '6e0d3a52-5e0b-4c1b-9f3e-000000000b0b', host: 'node-b.e2e.test' },
  c: { mac: '52:54:00:e2:5e:0c', uuid: '6e0d3a52-5e0c-4c1b-9f3e-000000000c0c', host: 'node-c.e2e.test' },
};
type Node = (typeof NODES)[keyof typeof NODES];

interface Registration {
  name?: string;
  address?: string;
  uniqueId: string;
}
interface NodeView {
  mac: string;
  status?: { step: string; state: string; message: string; address: string };
}

const since = (t0: number) => Math.round((performance.now() - t0) / 100) / 10;

async function until<T>(what: string, seconds: number, probe: () => T | undefined | Promise<T | undefined>) {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${seconds} s`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function preconditions(t: ExecutionContext): void {
  requireRoot(t);
  requireTools(t, TOOLS);
  try {
    readFileSync(NIC_ROM);
  } catch {
    t.fail(`${NIC_ROM} is missing: apt-get install ipxe-qemu`);
  }
}

/** A QEMU machine PXE-booting from the bridge (run inside the namespace, where its tap is). */
async function bootNode(net: PrivateNet, node: Node, tap: string, serialLog: string) {
  await net.addTap(tap);
  const qemu = net.spawn(
    `qemu ${node.mac}`,
    'qemu-system-x86_64',
    qemuArgs({
      media: ['-boot', 'n'],
      nic: [
        '-netdev',
        `tap,id=n0,ifname=${tap},script=no,downscript=no`,
        '-device',
        `virtio-net-pci,netdev=n0,mac=${node.mac}`,
      ],
      serialLog,
      memoryMiB: 2048,
      extra: ['-uuid', node.uuid],
    }),
  );
  const t0 = performance.now();
  const log = () => {
    try {
      return visibleText(readFileSync(serialLog, 'utf8'));
    } catch {
      return '';
    }
  };
  /** Seconds since power-on when `re` showed on the serial port; throws with the log's tail. */
  const waitSerial = async (re: RegExp, seconds = DEADLINE): Promise<number> => {
    const end = Date.now() + seconds * 1000;
    for (;;) {
      if (re.test(log())) return since(t0);
      if (qemu.proc.exitCode !== null && qemu.proc.exitCode !== undefined)
        throw new Error(`QEMU of ${node.mac} exited before ${re}: ${qemu.output()}\n${tail(log())}`);
      if (Date.now() > end)
        throw new Error(`${node.mac}: no ${re} on the serial port within ${seconds} s\n${tail(log())}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  };
  return { qemu, log, waitSerial, since: () => since(t0), stop: () => qemu.proc.kill('SIGKILL') };
}

function tail(s: string, n = 40): string {
  return `--- last serial output ---\n${s.split('\n').slice(-n).join('\n')}`;
}

test.serial(
  'e2e: stateless PXE: nodes boot from our DHCP-less config server, take their bundles, register; a missing and a tampered bundle wait and are reported',
  async (t) => {
    preconditions(t);
    const { iso } = await testIso();
    const tmp = mkdtempSync('/var/tmp/hvnode-e2e-stateless-');
    const net = await privateNet('sl', SUBNET);
    t.teardown(async () => {
      await net.close();
      // the serial logs of the last run stay, for a look after a failure
      rmSync(LOGS, { recursive: true, force: true });
      mkdirSync(LOGS, { recursive: true });
      for (const f of readdirSync(tmp))
        if (f.endsWith('-serial.log')) copyFileSync(join(tmp, f), join(LOGS, f));
      rmSync(tmp, { recursive: true, force: true });
    });
    const ip = net.serverIp;
    const data = join(tmp, 'data');
    const admin = async (...args: string[]) => {
      const r = await execa('node', [cli('hvnode-config-server'), 'admin', '--data', data, ...args], {
        reject: false,
        cwd: REPO,
      });
      if (r.exitCode !== 0) throw new Error(`admin ${args.join(' ')}: exit ${r.exitCode}: ${r.stderr}`);
      return r.stdout;
    };
    const nodeView = async (mac: string): Promise<NodeView | undefined> =>
      (JSON.parse(await admin('node', 'list', '--json')) as NodeView[]).find((n) => n.mac === mac);
    const putBundle = async (node: Node) => {
      const dir = join(tmp, node.mac.replace(/:/g, ''));
      mkdirSync(join(dir, 'overlay/etc/hvnode-e2e'), { recursive: true });
      writeFileSync(join(dir, 'overlay/etc/hvnode-e2e/who'), `${node.host}\n`);
      writeFileSync(
        join(dir, 'node.yaml'),
        `hostname: ${node.host}\nengine:\n  server: ${ip}\n  port: ${ENGINE_PORT}\n`,
      );
      await admin('bundle', 'put', node.mac, join(dir, 'node.yaml'), '--overlay', join(dir, 'overlay'));
    };

    // the server's side: the image, DHCP, our TFTP + HTTPS, the engine
    await admin('image', 'add', iso);
    await admin('image', 'default', VERSION);
    const dnsmasq = startDnsmasq(net, { range: [`${SUBNET}.50`, `${SUBNET}.99`], dir: join(tmp, 'dnsmasq') });
    await dnsmasq.waitFor(/DHCP, IP range/, 30);
    const server = net.spawn('config server', 'node', [
      cli('hvnode-config-server'),
      'serve',
      '--data',
      data,
      '--https',
      `${ip}:8443`,
      '--tftp',
      `${ip}:69`,
      '--public-url',
      `https://${ip}:8443`,
    ]);
    await server.waitFor(/^ready$/m, 60);
    const engineDir = join(tmp, 'engine');
    mkdirSync(engineDir);
    const engine: NetnsProcess = net.spawn('engine', process.execPath, [
      '--import=tsx',
      join(REPO, 'test/helpers/engine-process.ts'),
      ip,
      String(ENGINE_PORT),
      engineDir,
    ]);
    await engine.waitFor(/^ready https:/m, 60);
    const registrations = () =>
      (JSON.parse(readFileSync(join(engineDir, 'state.json'), 'utf8')) as { registrations: Registration[] })
        .registrations;

    // what pxelinux will get for A: its image, its MAC, where its bundle is and whose key signs it
    const key = (await admin('key'))
      .trim()
      .split(/\s+/)
      .find((w) => w.startsWith('sha256:'));
    t.truthy(key, 'admin key prints the fingerprint');
    const tftpCfg = await net.run('curl', [
      '-sS',
      `tftp://${ip}/pxelinux.cfg/${pxelinuxMacName(NODES.a.mac)}`,
    ]);
    t.is(tftpCfg.exitCode, 0, tftpCfg.all);
    t.regex(tftpCfg.all, new RegExp(`config_server=https://${ip}:8443 config_key=${key}`));
    t.regex(tftpCfg.all, /IPAPPEND 2/);

    await putBundle(NODES.a);
    await putBundle(NODES.c);

    // round 1, side by side: A (bundle there) and B (none yet)
    const a = await bootNode(net, NODES.a, 'tap-a', join(tmp, 'a-serial.log'));
    const b = await bootNode(net, NODES.b, 'tap-b', join(tmp, 'b-serial.log'));
    t.teardown(() => {
      a.stop();
      b.stop();
    });
    const aMenu = await a.waitSerial(/Install or upgrade|hvnode/);
    const aReady = await a.waitSerial(new RegExp(`^hvnode: ready ${VERSION} stateless$`, 'm'));
    const aRegistered = await until('A registered with the engine', 30, () =>
      registrations().find((r) => r.uniqueId === NODES.a.uuid),
    );
    t.log(
      `node A: PXE power-on → pxelinux at ${aMenu} s → "ready … stateless" at ${aReady} s, registered at ${a.since()} s (two machines on 2 cores)`,
    );
    t.regex(
      a.log(),
      new RegExp(
        `hvnode: stateless: applied the bundle for ${NODES.a.mac}: hostname ${NODES.a.host}, overlay /etc/hvnode-e2e/who`,
      ),
      'the kernel has the bundle host name; the overlay file was laid',
    );
    t.regex(
      a.log(),
      new RegExp(
        `Command line: .* config_server=https://${ip}:8443 config_key=${key} BOOTIF=${pxelinuxMacName(NODES.a.mac)}`,
      ),
    );
    t.is(aRegistered.name, NODES.a.host, 'registered under the bundle host name');
    t.regex(aRegistered.address ?? '', new RegExp(`^${SUBNET.replace(/\./g, '\\.')}\\.\\d+$`));
    const aView = await nodeView(NODES.a.mac);
    t.like(aView?.status, { step: 'ready', state: 'ok' }, 'the server lists A as ready');
    t.is(aView?.status?.address, aRegistered.address);
    a.stop();

    // B: waits for its bundle, says why, the server lists the reason
    await b.waitSerial(/hvnode: stateless: waiting: no bundle for 52:54:00:e2:5e:0b/);
    const bWaiting = await until('B reported waiting', 60, async () => {
      const v = await nodeView(NODES.b.mac);
      return v?.status?.state === 'waiting' ? v.status : undefined;
    });
    t.like(bWaiting, { step: 'fetch', state: 'waiting' });
    t.regex(bWaiting.message, /no bundle for 52:54:00:e2:5e:0b .*HTTP 404.*retry in/);

    // round 2: C (tampered) while B goes on with the bundle it now has
    const bundleFile = join(data, 'bundles', `${NODES.c.mac.replace(/:/g, '-')}.bundle`);
    const c = await (async () => {
      const bytes = readFileSync(bundleFile);
      const last = bytes.length - 1;
      bytes[last] = (bytes[last] ?? 0) ^ 0xff;
      writeFileSync(bundleFile, bytes);
      return bootNode(net, NODES.c, 'tap-c', join(tmp, 'c-serial.log'));
    })();
    t.teardown(() => c.stop());
    await putBundle(NODES.b);
    await b.waitSerial(new RegExp(`^hvnode: ready ${VERSION} stateless$`, 'm'));
    const bRegistered = await until('B registered with the engine', 30, () =>
      registrations().find((r) => r.uniqueId === NODES.b.uuid),
    );
    t.is(bRegistered.name, NODES.b.host, 'B registered under its own host name');
    t.regex(b.log(), /hostname node-b\.e2e\.test, overlay \/etc\/hvnode-e2e\/who/);
    t.like((await nodeView(NODES.b.mac))?.status, { step: 'ready', state: 'ok' });
    b.stop();

    await c.waitSerial(
      /hvnode: stateless: waiting: the payload digest \S+ is not the signed \S+: the bundle was changed/,
    );
    const cView = await until('C reported the refusal', 60, async () => {
      const v = await nodeView(NODES.c.mac);
      return v?.status?.state === 'error' ? v.status : undefined;
    });
    t.like(cView, { step: 'verify', state: 'error' });
    t.notRegex(c.log(), /hvnode: ready \S+ stateless/, 'the tampered bundle was not applied');
    t.falsy(
      registrations().find((r) => r.uniqueId === NODES.c.uuid),
      'C did not register',
    );
    t.log(`node C: refused: ${cView.message}`);
    c.stop();
  },
);
