// A stateless node needs an address before it can fetch its bundle, and nothing in the image
// gives it one: systemd-networkd runs but manages only the interfaces a .network file names, and
// a PXE boot through pxelinux has no `ip=` (dracut brings nothing up). So when a live node has no
// default route, the boot NIC (BOOTIF's MAC) gets DHCP through a runtime file in
// /run/systemd/network (gone at the next boot). Its name sorts after the bundle's own files
// (10-hvnode*.network in /etc/systemd/network), so a bundle with static addressing takes over
// when it is applied.

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../store/index.ts';
import { type LiveActions, reloadNetworkd } from './apply.ts';
import { type DiscoverEnv, defaultRouteNic } from './discover.ts';

export const BOOT_DHCP_FILE = '/run/systemd/network/90-hvnode-stateless-dhcp.network';

/** The runtime .network file: DHCP on the NIC with this MAC. */
export function bootDhcpNetwork(mac: string): string {
  return [
    '# Written by hvnode-node stateless: DHCP on the boot NIC until the bundle says otherwise',
    '[Match]',
    `MACAddress=${mac}`,
    '',
    '[Network]',
    'DHCP=yes',
    '',
  ].join('\n');
}

function hasDefaultRoute(env: DiscoverEnv): boolean {
  try {
    return defaultRouteNic(readFileSync(env.procRoute, 'utf8')) !== undefined;
  } catch {
    return false;
  }
}

/**
 * Without a default route, starts DHCP on the NIC with `mac` (once per boot) and waits up to
 * `waitMs` for a default route. Returns what it did, for the journal; a node that still has no
 * route goes on to fail its fetch and wait (the caller's retry loop).
 */
export async function ensureBootNetwork(
  mac: string,
  o: { root: string; discover: DiscoverEnv; live?: LiveActions; sleep: (ms: number) => Promise<void> },
  waitMs = 30_000,
): Promise<string | undefined> {
  if (!o.live || hasDefaultRoute(o.discover)) return undefined;
  const file = join(o.root, BOOT_DHCP_FILE);
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
    writeFileAtomic(file, bootDhcpNetwork(mac), 0o644);
    await reloadNetworkd(o.live);
  }
  for (let waited = 0; waited < waitMs && !hasDefaultRoute(o.discover); waited += 1000) await o.sleep(1000);
  return `no default route: DHCP on ${mac} (${BOOT_DHCP_FILE})${hasDefaultRoute(o.discover) ? '' : ', no address yet'}`;
}
