// What a stateless node must know before it can fetch its bundle: its MAC (BOOTIF, else the NIC
// that has the default route), its config server (config_server=, else the DNS SRV record
// _hvnode-config._tcp.<search domain>) and the keys a bundle may be signed with (config_key=,
// else the keys built into the image). Every path and the resolver are injectable for tests.

import type { SrvRecord } from 'node:dns';
import { resolveSrv as dnsResolveSrv } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HvError, parseMac } from '../../common/index.ts';
import type { NodeConfig } from '../config/index.ts';

export const SRV_SERVICE = '_hvnode-config._tcp';

export interface DiscoverEnv {
  /** /sys/class/net */
  sysNet: string;
  /** /proc/net/route */
  procRoute: string;
  /** /etc/resolv.conf */
  resolvConf: string;
  /** The image's trusted bundle keys, one fingerprint (or base64 key) a line: /etc/hvnode/config-keys */
  keysFile: string;
  resolveSrv: (name: string) => Promise<SrvRecord[]>;
}

export const DEFAULT_DISCOVER_ENV: DiscoverEnv = {
  sysNet: '/sys/class/net',
  procRoute: '/proc/net/route',
  resolvConf: '/etc/resolv.conf',
  keysFile: '/etc/hvnode/config-keys',
  resolveSrv: (name) => dnsResolveSrv(name),
};

/** A failure the node waits out (no server yet, no default route yet): the message is the reason shown. */
export class WaitReason extends Error {}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The interface of the default route with the lowest metric, from /proc/net/route's text. */
export function defaultRouteNic(routeTable: string): string | undefined {
  let best: { nic: string; metric: number } | undefined;
  for (const line of routeTable.split('\n').slice(1)) {
    const [nic, dest, , flags, , , metric, mask] = line.trim().split(/\s+/);
    if (!nic || dest !== '00000000' || mask !== '00000000') continue;
    // RTF_UP
    if ((Number.parseInt(flags ?? '0', 16) & 1) === 0) continue;
    const m = Number(metric ?? 0);
    if (!best || m < best.metric) best = { nic, metric: m };
  }
  return best?.nic;
}

function nicMac(env: DiscoverEnv, nic: string): string {
  const text = readText(join(env.sysNet, nic, 'address'));
  const mac = text === undefined ? undefined : parseMac(text);
  if (!mac)
    throw new WaitReason(`cannot read the MAC address of ${nic} (${join(env.sysNet, nic, 'address')})`);
  return mac;
}

/** This node's MAC: BOOTIF's, the BOOTIF NIC's, or the default route NIC's. */
export function nodeMac(config: NodeConfig, env: DiscoverEnv): string {
  const b = config.network?.bootif;
  if (b && 'mac' in b) return b.mac;
  if (b && 'nic' in b) return nicMac(env, b.nic);
  const nic = defaultRouteNic(readText(env.procRoute) ?? '');
  if (!nic) throw new WaitReason('no BOOTIF= on the command line and no default route yet (no network?)');
  return nicMac(env, nic);
}

/** The search domains of resolv.conf (the last `search` or `domain` line wins, as in the resolver). */
export function searchDomains(resolvConf: string): string[] {
  let domains: string[] = [];
  for (const line of resolvConf.split('\n')) {
    const [key, ...rest] = line.trim().split(/\s+/);
    if (key === 'search' || key === 'domain') domains = rest.filter((d) => d !== '' && d !== '.');
  }
  return domains.map((d) => d.replace(/\.$/, ''));
}

/** config_server= as a base URL without a trailing slash. */
export function serverBase(url: string): string {
  return url.replace(/\/+$/, '');
}

/** The config server: config_server=, else the first SRV record found in a search domain. */
export async function configServerUrl(config: NodeConfig, env: DiscoverEnv): Promise<string> {
  if (config.configServer?.url) return serverBase(config.configServer.url);
  const domains = searchDomains(readText(env.resolvConf) ?? '');
  if (domains.length === 0)
    throw new WaitReason(
      `no config_server= on the command line and no search domain in ${env.resolvConf} to look up ${SRV_SERVICE}`,
    );
  const tried: string[] = [];
  for (const domain of domains) {
    const name = `${SRV_SERVICE}.${domain}`;
    try {
      const records = await env.resolveSrv(name);
      // lowest priority first, then the heaviest (RFC 2782's weighting, without the lottery)
      const r = [...records].sort((a, b) => a.priority - b.priority || b.weight - a.weight)[0];
      if (r && r.name !== '' && r.name !== '.') {
        const host = r.name.replace(/\.$/, '');
        return `https://${host.includes(':') ? `[${host}]` : host}:${r.port}`;
      }
      tried.push(`${name}: no record`);
    } catch (err) {
      tried.push(`${name}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  throw new WaitReason(`no config_server= and no SRV record (${tried.join('; ')})`);
}

/** The keys a bundle may be signed with: config_key=, else the image's keys file. */
export function trustedKeys(config: NodeConfig, env: DiscoverEnv): string[] {
  if (config.configServer?.key) return [config.configServer.key];
  const lines = (readText(env.keysFile) ?? '')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
  if (lines.length === 0)
    throw new HvError('no key to check the bundle with', {
      hint: `put config_key=sha256:… (hvnode-config-server admin key) on the command line, or build the key into the image (${env.keysFile})`,
    });
  return lines;
}
