// A private network for PXE tests: one network namespace holding a bridge with the servers'
// address and one tap device per virtual machine, so that nothing a test sends leaves it (the
// addresses exist only inside). Processes run inside it through `ip netns exec`; QEMU too (it
// opens its tap there). Everything is removed by close(): the processes are killed, the
// namespace deleted (its bridge and taps go with it). A namespace left by a test that died
// (its process gone) is deleted by the next one.

import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { isAlive } from '../../common/index.ts';

const PREFIX = 'hvnode-e2e-';

export interface NetnsProcess {
  name: string;
  proc: ResultPromise<{ reject: false; all: true; stdin: 'ignore' }>;
  /** Resolves with stdout+stderr so far once `re` matches it (rejects on exit or at the deadline). */
  waitFor(re: RegExp, seconds: number): Promise<string>;
  output(): string;
}

export interface PrivateNet {
  ns: string;
  /** The bridge's address: where the servers listen. */
  serverIp: string;
  /** A tap on the bridge for one machine (name inside the namespace). */
  addTap(name: string): Promise<string>;
  /** Runs a command inside the namespace until close() (or until it exits). */
  spawn(name: string, cmd: string, args: string[], env?: Record<string, string>): NetnsProcess;
  /** A command inside the namespace, to completion. */
  run(cmd: string, args: string[]): Promise<{ exitCode: number | undefined; all: string }>;
  close(): Promise<void>;
}

async function ip(args: string[]): Promise<void> {
  const r = await execa('ip', args, { reject: false, all: true });
  if (r.exitCode !== 0) throw new Error(`ip ${args.join(' ')}: ${r.all}`);
}

/** Deletes namespaces of this helper whose test process is gone. */
async function removeStale(): Promise<void> {
  const r = await execa('ip', ['netns', 'list'], { reject: false });
  for (const line of r.stdout.split('\n')) {
    const name = line.split(/\s+/)[0] ?? '';
    const pid = Number(name.slice(PREFIX.length).split('-')[0]);
    if (name.startsWith(PREFIX) && Number.isInteger(pid) && !isAlive(pid))
      await execa('ip', ['netns', 'del', name], { reject: false });
  }
}

/** A namespace `hvnode-e2e-<pid>-<tag>` with bridge br0 at `${subnet}.1/24`, loopback up. */
export async function privateNet(tag: string, subnet: string): Promise<PrivateNet> {
  await removeStale();
  const ns = `${PREFIX}${process.pid}-${tag}`;
  const serverIp = `${subnet}.1`;
  const procs: NetnsProcess[] = [];
  await ip(['netns', 'add', ns]);
  try {
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    await ip(['-n', ns, 'link', 'add', 'br0', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
    await ip(['-n', ns, 'addr', 'add', `${serverIp}/24`, 'dev', 'br0']);
    await ip(['-n', ns, 'link', 'set', 'br0', 'up']);
  } catch (err) {
    await execa('ip', ['netns', 'del', ns], { reject: false });
    throw err;
  }
  return {
    ns,
    serverIp,
    addTap: async (name) => {
      await ip(['-n', ns, 'tuntap', 'add', 'dev', name, 'mode', 'tap']);
      await ip(['-n', ns, 'link', 'set', name, 'master', 'br0', 'up']);
      return name;
    },
    spawn: (name, cmd, args, env) => {
      const proc = execa('ip', ['netns', 'exec', ns, cmd, ...args], {
        reject: false,
        all: true,
        stdin: 'ignore',
        ...(env ? { env } : {}),
      });
      let out = '';
      proc.all?.on('data', (d: Buffer) => {
        out += d.toString();
      });
      const p: NetnsProcess = {
        name,
        proc,
        output: () => out,
        waitFor: async (re, seconds) => {
          const until = Date.now() + seconds * 1000;
          for (;;) {
            if (re.test(out)) return out;
            if (proc.exitCode !== null && proc.exitCode !== undefined)
              throw new Error(`${name} exited (${proc.exitCode}) before ${re}:\n${out}`);
            if (Date.now() > until) throw new Error(`${name}: no ${re} within ${seconds} s:\n${out}`);
            await new Promise((r) => setTimeout(r, 200));
          }
        },
      };
      procs.push(p);
      return p;
    },
    run: async (cmd, args) => {
      const r = await execa('ip', ['netns', 'exec', ns, cmd, ...args], { reject: false, all: true });
      return { exitCode: r.exitCode, all: r.all ?? '' };
    },
    close: async () => {
      for (const p of procs) p.proc.kill('SIGTERM');
      const killer = setTimeout(() => {
        for (const p of procs) p.proc.kill('SIGKILL');
      }, 5000);
      await Promise.all(procs.map((p) => p.proc.catch(() => undefined)));
      clearTimeout(killer);
      await execa('ip', ['netns', 'del', ns], { reject: false });
    },
  };
}

export interface DnsmasqOptions {
  /** The first and last address handed out, e.g. 10.213.7.50, 10.213.7.99. */
  range: [string, string];
  /** Folder for the lease file. */
  dir: string;
  /** iPXE clients (DHCP user class "iPXE") get this boot file instead, e.g. an http:// script URL. */
  ipxeBootFile?: string;
}

/**
 * dnsmasq for DHCP only (no DNS: --port=0) on the bridge, the boot file pxelinux.0 from the TFTP
 * server at the bridge's address (the next-server field); the router option is the bridge's
 * address (dnsmasq's default), so the machines get a default route. With ipxeBootFile, iPXE
 * (QEMU's PXE ROM is iPXE) gets that file instead: a tagged dhcp-boot wins over the untagged one.
 */
export function startDnsmasq(net: PrivateNet, o: DnsmasqOptions): NetnsProcess {
  mkdirSync(o.dir, { recursive: true });
  return net.spawn('dnsmasq', 'dnsmasq', [
    '--keep-in-foreground',
    '--log-facility=-',
    '--conf-file=/dev/null',
    '--port=0',
    '--user=root',
    '--interface=br0',
    '--bind-interfaces',
    `--dhcp-range=${o.range[0]},${o.range[1]},255.255.255.0,1h`,
    `--dhcp-boot=pxelinux.0,,${net.serverIp}`,
    ...(o.ipxeBootFile ? ['--dhcp-userclass=set:ipxe,iPXE', `--dhcp-boot=tag:ipxe,${o.ipxeBootFile}`] : []),
    `--dhcp-leasefile=${join(o.dir, 'leases')}`,
    `--pid-file=${join(o.dir, 'dnsmasq.pid')}`,
    '--log-dhcp',
  ]);
}

/** The leases dnsmasq gave: MAC → address. */
export function leases(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  let text = '';
  try {
    text = readFileSync(join(dir, 'leases'), 'utf8');
  } catch {}
  for (const line of text.split('\n')) {
    const [, mac, addr] = line.split(' ');
    if (mac && addr) out.set(mac.toLowerCase(), addr);
  }
  return out;
}
