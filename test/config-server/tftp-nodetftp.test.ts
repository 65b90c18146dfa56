// Why config-server/tftp is our own: node-tftp's server (npm `tftp`, the only TFTP server on npm
// with option support) answers one duplicate ACK with a storm of DATA packets, the Sorcerer's
// Apprentice of RFC 1123 4.2.3.1, and serves files through symlinks that lead out of its root.
// These tests pin both defects; should a new version fix them, they fail and the choice can be
// revisited. The figures go to config-server/README.md.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { tftpGet } from './tftp-client.ts';

interface NodeTftpServer {
  listen(): void;
  close(): void;
  on(event: 'listening', fn: () => void): void;
  on(event: 'error', fn: (err: Error) => void): void;
  _socket: { address(): { port: number } };
}
const nodeTftp = createRequire(import.meta.url)('tftp') as {
  createServer(o: { host: string; port: number; root: string; denyPUT?: boolean }): NodeTftpServer;
};

async function startNodeTftp(t: { teardown(fn: () => void): void }, root: string): Promise<number> {
  // node-tftp has no ephemeral-port support worth the name (port 0 is turned into 1), so try a few
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 30000);
    const server = nodeTftp.createServer({ host: '127.0.0.1', port, root, denyPUT: true });
    const ok = await new Promise<boolean>((resolve) => {
      server.on('listening', () => resolve(true));
      server.on('error', () => resolve(false));
      server.listen();
    });
    if (ok) {
      t.teardown(() => server.close());
      return port;
    }
  }
  throw new Error('no free port for the node-tftp server');
}

function tempRoot(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-nodetftp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const BLOCKS = 165;

test('node-tftp: one duplicate ACK in lock-step makes its server flood and stall', async (t) => {
  const dir = tempRoot(t);
  const file = randomBytes(BLOCKS * 512 - 100); // 165 blocks of 512, the last one short
  writeFileSync(join(dir, 'f.bin'), file);
  const port = await startNodeTftp(t, dir);

  const clean = await tftpGet({ host: '127.0.0.1', port, file: 'f.bin', deadlineMs: 4000 });
  t.true(clean.complete, 'without a duplicate ACK it transfers fine');
  t.is(clean.dataPacketsReceived, BLOCKS);

  // the same transfer, with the ACK of block 5 sent twice (what a ROM does after a lost DATA)
  const dup = await tftpGet({
    host: '127.0.0.1',
    port,
    file: 'f.bin',
    dupAckAt: [5],
    deadlineMs: 6000,
    maxPackets: 30_000,
    resendMs: 1000,
    maxResends: 3,
  });
  t.log(
    `node-tftp, ${BLOCKS} blocks, one duplicate ACK: ${dup.dataPacketsReceived} DATA packets, ` +
      `${dup.blocks} blocks received, outcome ${dup.outcome}, ${Math.round(dup.ms)} ms`,
  );
  t.true(
    !dup.complete || dup.dataPacketsReceived > BLOCKS * 10,
    `expected a flood or a stall, got ${dup.dataPacketsReceived} packets (${dup.outcome})`,
  );
});

test('node-tftp: its server follows a symlink out of its root', async (t) => {
  const outside = tempRoot(t);
  const secret = `secret ${randomBytes(8).toString('hex')}\n`;
  writeFileSync(join(outside, 'secret'), secret);
  const root = tempRoot(t);
  symlinkSync(join(outside, 'secret'), join(root, 'escape-link'));
  const port = await startNodeTftp(t, root);

  const got = await tftpGet({ host: '127.0.0.1', port, file: 'escape-link', deadlineMs: 4000 });
  t.true(got.complete);
  t.is(got.data.toString(), secret, 'the file outside the root was served');
});
