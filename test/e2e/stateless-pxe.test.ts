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
// The site (namespace, dnsmasq, config server, engine, machines) is test/helpers/pxe-site.ts.

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
import { pxelinuxMacName } from '../../common/index.ts';
import { requireRoot, requireTools } from '../helpers/env.ts';
import { NIC_ROM, SITE_TOOLS, type SiteNode, startSite, until } from '../helpers/pxe-site.ts';
import { testIso } from '../helpers/test-iso.ts';

const TOOLS = {
  mmdebstrap: 'mmdebstrap',
  mksquashfs: 'squashfs-tools',
  ...SITE_TOOLS,
};
const SUBNET = '10.213.7';
// PXE over TFTP (the initrd carries the ISO), then Node.js and DHCP on a TCG guest: slower than
// the other boot paths, more so with two guests on two cores
const DEADLINE = 480;
const LOGS = '/var/tmp/hvnode-e2e-stateless-logs';
const NODES = {
  a: { mac: '52:54:00:e2:5e:0a', uuid: '6e0d3a52-5e0a-4c1b-9f3e-000000000a0a', host: 'node-a.e2e.test' },
  b: { mac: '52:54:00:e2:5e:0b', uuid: '6e0d3a52-5e0b-4c1b-9f3e-000000000b0b', host: 'node-b.e2e.test' },
  c: { mac: '52:54:00:e2:5e:0c', uuid: '6e0d3a52-5e0c-4c1b-9f3e-000000000c0c', host: 'node-c.e2e.test' },
};

function preconditions(t: ExecutionContext): void {
  requireRoot(t);
  requireTools(t, TOOLS);
  try {
    readFileSync(NIC_ROM);
  } catch {
    t.fail(`${NIC_ROM} is missing: apt-get install ipxe-qemu`);
  }
}

test.serial(
  'e2e: stateless PXE: nodes boot from our DHCP-less config server, take their bundles, register; a missing and a tampered bundle wait and are reported',
  async (t) => {
    preconditions(t);
    const { iso } = await testIso();
    const tmp = mkdtempSync('/var/tmp/hvnode-e2e-stateless-');
    t.teardown(() => {
      // the serial logs of the last run stay, for a look after a failure
      rmSync(LOGS, { recursive: true, force: true });
      mkdirSync(LOGS, { recursive: true });
      for (const f of readdirSync(tmp))
        if (f.endsWith('-serial.log')) copyFileSync(join(tmp, f), join(LOGS, f));
      rmSync(tmp, { recursive: true, force: true });
    });
    // the server's side: the image, DHCP, our TFTP + HTTPS, the engine (stopped before the
    // teardown above: ava runs teardowns last-registered first)
    const site = await startSite({ tag: 'sl', subnet: SUBNET, dir: tmp, iso, boot: 'pxelinux' });
    t.teardown(() => site.close());
    const { ip, net, admin, nodeView, putBundle, registrations, version, configUrl } = site;
    const boot = (node: SiteNode, tap: string, log: string) =>
      site.boot(node, { tap, serialLog: join(tmp, log) });
    // a node reports its last step to the server after it says the ready line (stateless/run.ts)
    const readyStatus = (node: SiteNode) =>
      until(`${node.host} reported ready`, 60, async () => {
        const v = await nodeView(node.mac);
        return v?.status?.step === 'ready' ? v.status : undefined;
      });

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
    t.regex(tftpCfg.all, new RegExp(`config_server=${configUrl} config_key=${key}`));
    t.regex(tftpCfg.all, /IPAPPEND 2/);

    await putBundle(NODES.a);
    await putBundle(NODES.c);

    // round 1, side by side: A (bundle there) and B (none yet)
    const a = await boot(NODES.a, 'tap-a', 'a-serial.log');
    const b = await boot(NODES.b, 'tap-b', 'b-serial.log');
    t.teardown(() => {
      a.stop();
      b.stop();
    });
    const aMenu = await a.waitSerial(/Install or upgrade|hvnode/, DEADLINE);
    const aReady = await a.waitSerial(new RegExp(`^hvnode: ready ${version} stateless$`, 'm'), DEADLINE);
    const aRegistered = await site.registered(NODES.a, 30);
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
        `Command line: .* config_server=${configUrl} config_key=${key} BOOTIF=${pxelinuxMacName(NODES.a.mac)}`,
      ),
    );
    t.is(aRegistered.name, NODES.a.host, 'registered under the bundle host name');
    t.regex(aRegistered.address ?? '', new RegExp(`^${SUBNET.replace(/\./g, '\\.')}\\.\\d+$`));
    const aStatus = await readyStatus(NODES.a);
    t.like(aStatus, { step: 'ready', state: 'ok' }, 'the server lists A as ready');
    t.is<string | undefined, string | undefined>(aStatus.address, aRegistered.address);
    a.stop();

    // B: waits for its bundle, says why, the server lists the reason
    await b.waitSerial(/hvnode: stateless: waiting: no bundle for 52:54:00:e2:5e:0b/, DEADLINE);
    const bWaiting = await until('B reported waiting', 60, async () => {
      const v = await nodeView(NODES.b.mac);
      return v?.status?.state === 'waiting' ? v.status : undefined;
    });
    t.like(bWaiting, { step: 'fetch', state: 'waiting' });
    t.regex(bWaiting.message, /no bundle for 52:54:00:e2:5e:0b .*HTTP 404.*retry in/);

    // round 2: C (tampered) while B goes on with the bundle it now has
    const bundleFile = join(site.data, 'bundles', `${NODES.c.mac.replace(/:/g, '-')}.bundle`);
    const c = await (async () => {
      const bytes = readFileSync(bundleFile);
      const last = bytes.length - 1;
      bytes[last] = (bytes[last] ?? 0) ^ 0xff;
      writeFileSync(bundleFile, bytes);
      return boot(NODES.c, 'tap-c', 'c-serial.log');
    })();
    t.teardown(() => c.stop());
    await putBundle(NODES.b);
    await b.waitSerial(new RegExp(`^hvnode: ready ${version} stateless$`, 'm'), DEADLINE);
    const bRegistered = await site.registered(NODES.b, 30);
    t.is(bRegistered.name, NODES.b.host, 'B registered under its own host name');
    t.regex(b.log(), /hostname node-b\.e2e\.test, overlay \/etc\/hvnode-e2e\/who/);
    t.like(await readyStatus(NODES.b), { step: 'ready', state: 'ok' });
    b.stop();

    await c.waitSerial(
      /hvnode: stateless: waiting: the payload digest \S+ is not the signed \S+: the bundle was changed/,
      DEADLINE,
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
