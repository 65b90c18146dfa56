// A site that boots stateless nodes over the network, for the stateless PXE e2e and the
// pxe-register bench: inside a private network namespace (test/helpers/netns.ts: a bridge,
// nothing leaves it) dnsmasq hands out addresses (DHCP only), hvnode-config-server serves TFTP
// and HTTPS (plus plain HTTP for iPXE) from a data directory holding the image, and the engine
// stand-in (test/helpers/engine-process.ts) takes registrations. QEMU machines, their taps on
// the bridge, power on and boot through their iPXE ROM, one of two ways:
// - 'pxelinux': dnsmasq names pxelinux.0 on our TFTP; pxelinux fetches pxelinux.cfg/01-<mac>, the
//   kernel and the initrd that carries the whole ISO, all lock-step TFTP;
// - 'ipxe-http': dnsmasq tells iPXE clients (user class "iPXE") to chain to the node's script,
//   GET /v1/boot/<mac> on the --http listener, which fetches kernel and initrd over HTTP;
//   dracut's livenet then fetches the squashfs over HTTP.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, execaSync } from 'execa';
import { cli, REPO } from './env.ts';
import { type NetnsProcess, type PrivateNet, privateNet, startDnsmasq } from './netns.ts';
import { qemuArgs, visibleText } from './qemu.ts';

/** What a site needs besides root: tool → Debian package. */
export const SITE_TOOLS = {
  'qemu-system-x86_64': 'qemu-system-x86',
  dnsmasq: 'dnsmasq-base',
  ip: 'iproute2',
  xorriso: 'xorriso',
};
/** The PXE ROM QEMU gives a virtio NIC (iPXE). */
export const NIC_ROM = '/usr/lib/ipxe/qemu/efi-virtio.rom';

const PORTS = { https: 8443, http: 8080, tftp: 69, engine: 9443 };

export type BootPath = 'pxelinux' | 'ipxe-http';

export interface SiteOptions {
  /** Names the namespace: hvnode-e2e-<pid>-<tag>. */
  tag: string;
  /** The /24's first three octets: the servers at .1, DHCP hands out .50–.99. */
  subnet: string;
  /** Scratch folder (data directory, leases, engine state, bundle sources); the caller removes it. */
  dir: string;
  /** The live ISO: the image every node boots (the default image). */
  iso: string;
  boot?: BootPath;
}

export interface SiteNode {
  mac: string;
  /** The machine's SMBIOS UUID: what it registers with the engine as (uniqueId). */
  uuid: string;
  /** The host name its bundle gives it. */
  host: string;
}

export interface Registration {
  name?: string;
  address?: string;
  uniqueId: string;
}

export interface NodeView {
  mac: string;
  status?: { step: string; state: string; message: string; address: string };
}

export interface Machine {
  /** The serial log as read (control sequences removed). */
  log(): string;
  /** Seconds since power-on when `re` showed on the serial port; throws with the log's tail. */
  waitSerial(re: RegExp, seconds: number): Promise<number>;
  /** Seconds since power-on. */
  since(): number;
  /** Seconds since power-on at which each of the boot's `marks` first showed (±1 s). */
  marks: Record<string, number>;
  stop(): void;
}

export interface Site {
  net: PrivateNet;
  /** The servers' address on the bridge. */
  ip: string;
  /** The config server's data directory. */
  data: string;
  /** Its public HTTPS URL: config_server= on the nodes' command lines. */
  configUrl: string;
  /** The image's version (the default image). */
  version: string;
  /** `hvnode-config-server admin --data DATA ARGS`: its standard output; throws on failure. */
  admin(...args: string[]): Promise<string>;
  /** The server's view of a node (admin node list): its last status report. */
  nodeView(mac: string): Promise<NodeView | undefined>;
  /** Signs and publishes the node's bundle: its host name, the engine, an overlay file naming it. */
  putBundle(node: SiteNode): Promise<void>;
  /** What the engine stand-in has recorded. */
  registrations(): Registration[];
  /** The node's registration once the engine has it (polled every 250 ms). */
  registered(node: SiteNode, seconds: number): Promise<Registration>;
  /** Powers on a machine PXE-booting from the bridge (its tap added first). */
  boot(
    node: SiteNode,
    o: { tap: string; serialLog: string; marks?: Record<string, RegExp> },
  ): Promise<Machine>;
  /** Stops everything in the namespace (machines included) and deletes it. */
  close(): Promise<void>;
}

const since = (t0: number) => Math.round((performance.now() - t0) / 100) / 10;

/** Polls `probe` until it gives a value; throws `what: not within N s` at the deadline. */
export async function until<T>(
  what: string,
  seconds: number,
  probe: () => T | undefined | Promise<T | undefined>,
  everyMs = 1000,
): Promise<T> {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${seconds} s`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Why no site can run here (not root, a tool or the NIC ROM missing) with the fix; undefined: it can. */
export function siteUnmet(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, TFTP on port 69)';
  for (const [tool, pkg] of Object.entries(SITE_TOOLS))
    if (execaSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { reject: false }).exitCode !== 0)
      return `${tool} is not installed: apt-get install ${pkg}`;
  try {
    readFileSync(NIC_ROM);
  } catch {
    return `${NIC_ROM} is missing: apt-get install ipxe-qemu`;
  }
  return undefined;
}

function tail(s: string, n = 40): string {
  return `--- last serial output ---\n${s.split('\n').slice(-n).join('\n')}`;
}

/** Starts the site: the image in the data directory, DHCP, the config server, the engine. */
export async function startSite(o: SiteOptions): Promise<Site> {
  const net = await privateNet(o.tag, o.subnet);
  try {
    return await populate(net, o);
  } catch (err) {
    await net.close();
    throw err;
  }
}

async function populate(net: PrivateNet, o: SiteOptions): Promise<Site> {
  const ip = net.serverIp;
  const data = join(o.dir, 'data');
  const configUrl = `https://${ip}:${PORTS.https}`;
  const admin = async (...args: string[]) => {
    const r = await execa('node', [cli('hvnode-config-server'), 'admin', '--data', data, ...args], {
      reject: false,
      cwd: REPO,
    });
    if (r.exitCode !== 0) throw new Error(`admin ${args.join(' ')}: exit ${r.exitCode}: ${r.stderr}`);
    return r.stdout;
  };

  const { version } = JSON.parse(await admin('image', 'add', o.iso, '--json')) as { version: string };
  await admin('image', 'default', version);
  const http = o.boot === 'ipxe-http';
  const dnsmasq = startDnsmasq(net, {
    range: [`${o.subnet}.50`, `${o.subnet}.99`],
    dir: join(o.dir, 'dnsmasq'),
    // iPXE expands ${mac} in the boot file name: each machine asks for its own script
    ...(http ? { ipxeBootFile: `http://${ip}:${PORTS.http}/v1/boot/\${mac}` } : {}),
  });
  await dnsmasq.waitFor(/DHCP, IP range/, 30);
  const server = net.spawn('config server', 'node', [
    cli('hvnode-config-server'),
    'serve',
    '--data',
    data,
    '--https',
    `${ip}:${PORTS.https}`,
    ...(http ? ['--http', `${ip}:${PORTS.http}`] : []),
    '--tftp',
    `${ip}:${PORTS.tftp}`,
    '--public-url',
    configUrl,
  ]);
  await server.waitFor(/^ready$/m, 60);
  const engineDir = join(o.dir, 'engine');
  mkdirSync(engineDir);
  const engine: NetnsProcess = net.spawn('engine', process.execPath, [
    '--import=tsx',
    join(REPO, 'test/helpers/engine-process.ts'),
    ip,
    String(PORTS.engine),
    engineDir,
  ]);
  await engine.waitFor(/^ready https:/m, 60);

  const registrations = () =>
    (JSON.parse(readFileSync(join(engineDir, 'state.json'), 'utf8')) as { registrations: Registration[] })
      .registrations;

  return {
    net,
    ip,
    data,
    configUrl,
    version,
    admin,
    registrations,
    nodeView: async (mac) =>
      (JSON.parse(await admin('node', 'list', '--json')) as NodeView[]).find((n) => n.mac === mac),
    putBundle: async (node) => {
      const dir = join(o.dir, node.mac.replace(/:/g, ''));
      mkdirSync(join(dir, 'overlay/etc/hvnode-e2e'), { recursive: true });
      writeFileSync(join(dir, 'overlay/etc/hvnode-e2e/who'), `${node.host}\n`);
      writeFileSync(
        join(dir, 'node.yaml'),
        `hostname: ${node.host}\nengine:\n  server: ${ip}\n  port: ${PORTS.engine}\n`,
      );
      await admin('bundle', 'put', node.mac, join(dir, 'node.yaml'), '--overlay', join(dir, 'overlay'));
    },
    registered: (node, seconds) =>
      until(
        `${node.mac} registered with the engine`,
        seconds,
        () => registrations().find((r) => r.uniqueId === node.uuid),
        250,
      ),
    boot: (node, b) => bootMachine(net, node, b),
    close: () => net.close(),
  };
}

/** A QEMU machine PXE-booting from the bridge (run inside the namespace, where its tap is). */
async function bootMachine(
  net: PrivateNet,
  node: SiteNode,
  o: { tap: string; serialLog: string; marks?: Record<string, RegExp> },
): Promise<Machine> {
  await net.addTap(o.tap);
  const qemu = net.spawn(
    `qemu ${node.mac}`,
    'qemu-system-x86_64',
    qemuArgs({
      media: ['-boot', 'n'],
      nic: [
        '-netdev',
        `tap,id=n0,ifname=${o.tap},script=no,downscript=no`,
        '-device',
        `virtio-net-pci,netdev=n0,mac=${node.mac}`,
      ],
      serialLog: o.serialLog,
      memoryMiB: 2048,
      extra: ['-uuid', node.uuid],
    }),
  );
  const t0 = performance.now();
  const log = () => {
    try {
      return visibleText(readFileSync(o.serialLog, 'utf8'));
    } catch {
      return '';
    }
  };
  const marks: Record<string, number> = {};
  const watch = () => {
    const text = log();
    for (const [name, re] of Object.entries(o.marks ?? {}))
      if (marks[name] === undefined && re.test(text)) marks[name] = since(t0);
  };
  const watcher = o.marks ? setInterval(watch, 1000) : undefined;
  // the last look when the machine stops, however it stops (site.close() kills it too)
  void qemu.proc.then(() => {
    clearInterval(watcher);
    watch();
  });
  const running = () => qemu.proc.exitCode === null || qemu.proc.exitCode === undefined;
  return {
    log,
    marks,
    since: () => since(t0),
    waitSerial: async (re, seconds) => {
      const end = Date.now() + seconds * 1000;
      for (;;) {
        if (re.test(log())) return since(t0);
        if (!running())
          throw new Error(`QEMU of ${node.mac} exited before ${re}: ${qemu.output()}\n${tail(log())}`);
        if (Date.now() > end)
          throw new Error(`${node.mac}: no ${re} on the serial port within ${seconds} s\n${tail(log())}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    },
    stop: () => {
      qemu.proc.kill('SIGKILL');
    },
  };
}
