// The boot-storm bench (test/bench/storm.ts) in small: 5 simulated PXE nodes with small kernel
// and initrd against the real config server and engine stand-in, so that the bench code cannot
// rot. Every node must fetch its pxelinux config, kernel and initrd over TFTP (sizes and content
// checked), take its own bundle (host name and overlay in its root), register under its own
// name from its own source address, and end with "ready" at the server. No timing is asserted.

import test from 'ava';
import { ownBundles, runStorm, STORM_BLKSIZE } from '../bench/storm.ts';
import { requireTools } from '../helpers/env.ts';

const NODES = 5;
const KERNEL = 200 * 1024 + 7; // not a multiple of the block size
const INITRD = 3 * STORM_BLKSIZE * 100; // a multiple: the transfer ends with an empty block

test('boot storm in small: every node boots over TFTP, takes its own bundle, registers and is ready', async (t) => {
  requireTools(t, { openssl: 'openssl' });
  const r = await runStorm({ nodes: NODES, kernelBytes: KERNEL, initrdBytes: INITRD, spreadMs: 200 });
  t.deepEqual(
    r.runs.filter((n) => n.error).map((n) => `${n.mac}: ${n.error}`),
    [],
    'no node failed',
  );
  t.is(r.runs.filter((n) => n.endMs !== undefined).length, NODES);
  t.is(new Set(r.runs.map((n) => n.mac)).size, NODES);
  t.is(new Set(r.runs.map((n) => n.address)).size, NODES, 'each node has its own source address');
  for (const n of r.runs) {
    t.true(n.tftpBytes > KERNEL + INITRD, `${n.mac}: config + kernel + initrd over TFTP (${n.tftpBytes})`);
    t.true(
      n.said.some((l) => /^hvnode: ready \S+ stateless$/.test(l)),
      `${n.mac} said: ${n.said.join(' | ')}`,
    );
    t.like(r.lastStatus[n.mac], { step: 'ready', state: 'ok', address: n.address }, n.mac);
    t.is(n.statusMs.length, 6, `${n.mac}: fetch, verify, apply, overlay, register, ready`);
    t.is(n.statusLost, 0, `${n.mac}: every status report was taken`);
  }
  t.is(r.registrations.length, NODES, 'the engine has one registration per node');
  t.is(
    ownBundles(r),
    NODES,
    'each node: its own host name and overlay, registered under it from its address',
  );
  t.is(r.readyAtServer, NODES);
  t.true(
    r.counters.tftpTransfersCompleted >= 3 * NODES,
    `server TFTP completions ${r.counters.tftpTransfersCompleted}`,
  );
  t.true((r.counters.http['GET /v1/bundles/:mac 200'] ?? 0) >= NODES);
  t.true(r.wallMs > 0);
  t.log(
    `${NODES} nodes in ${(r.wallMs / 1000).toFixed(2)} s; TFTP re-sent ${r.runs.reduce((s, n) => s + n.tftpResent, 0)}, retried ${r.runs.reduce((s, n) => s + n.tftpRetries, 0)}; HTTP retries ${r.runs.reduce((s, n) => s + n.httpRetries, 0)}; server TFTP retransmits ${r.counters.tftpRetransmits}`,
  );
});
