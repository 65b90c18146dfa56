// The boot NIC's DHCP on a PXE-booted stateless node (node-runtime/stateless/dhcp.ts): the local
// initramfs brings no network up, so the runtime writes a runtime .network file and has
// systemd-networkd read it, with `networkctl reload` or, in an image without D-Bus, by
// restarting the service through systemctl.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { BOOT_DHCP_FILE, ensureBootNetwork } from '../../node-runtime/stateless/dhcp.ts';

const ROUTE_HEADER = 'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n';
const DEFAULT_ROUTE = 'ens3\t00000000\t0102000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n';

function node(t: { teardown: (f: () => void) => void }, failing: string[]) {
  const root = mkdtempSync('/tmp/hvnode-dhcp-');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const procRoute = join(root, 'route');
  writeFileSync(procRoute, ROUTE_HEADER);
  const calls: string[] = [];
  const live = {
    run: async (cmd: string, args: string[]) => {
      calls.push([cmd, ...args].join(' '));
      if (failing.includes(cmd))
        throw new Error(`${cmd}: Failed to connect system bus: No such file or directory`);
      // networkd took the file: the lease brings a default route
      writeFileSync(procRoute, ROUTE_HEADER + DEFAULT_ROUTE);
    },
    setHostname: () => {},
  };
  const discover = {
    sysNet: join(root, 'net'),
    procRoute,
    resolvConf: join(root, 'resolv.conf'),
    keysFile: join(root, 'keys'),
    resolveSrv: async () => [],
  };
  return { root, calls, live, discover };
}

test('no default route: DHCP on the boot NIC through a runtime .network file, networkctl reload', async (t) => {
  const n = node(t, []);
  const said = await ensureBootNetwork('52:54:00:12:34:56', { ...n, sleep: async () => {} }, 3000);
  t.deepEqual(n.calls, ['networkctl reload']);
  t.regex(
    readFileSync(join(n.root, BOOT_DHCP_FILE), 'utf8'),
    /MACAddress=52:54:00:12:34:56\n[\s\S]*DHCP=yes/,
  );
  t.is(said, `no default route: DHCP on 52:54:00:12:34:56 (${BOOT_DHCP_FILE})`);
});

test('without D-Bus (networkctl cannot reach networkd), systemd-networkd is restarted instead', async (t) => {
  const n = node(t, ['networkctl']);
  const said = await ensureBootNetwork('52:54:00:12:34:56', { ...n, sleep: async () => {} }, 3000);
  t.deepEqual(n.calls, ['networkctl reload', 'systemctl try-restart systemd-networkd.service']);
  t.notRegex(said ?? '', /no address yet/, 'the route came after the restart');
});

test('a node with a default route is left alone', async (t) => {
  const n = node(t, []);
  writeFileSync(n.discover.procRoute, ROUTE_HEADER + DEFAULT_ROUTE);
  t.is(await ensureBootNetwork('52:54:00:12:34:56', { ...n, sleep: async () => {} }, 3000), undefined);
  t.deepEqual(n.calls, []);
});
