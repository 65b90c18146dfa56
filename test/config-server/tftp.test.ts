// The config server's read-only TFTP server against real clients (curl, tftp-hpa's tftp,
// node-tftp's client) and a raw-UDP client of our own that injects loss and duplicate ACKs, and
// against hostile requests: each refused with an ERROR packet, the server still serving after.

import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { createTftpServer, type TftpServer, type TftpServerOptions } from '../../config-server/tftp/index.ts';
import { encodeAck, encodeRequest, Op, parseReply, type Reply } from '../../config-server/tftp/packet.ts';
import { tftpExchange, tftpGet } from './tftp-client.ts';

const run = promisify(execFile);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const HOST = '127.0.0.1';

interface Served {
  server: TftpServer;
  port: number;
  root: string;
  tmp: string;
}

/** A server on 127.0.0.1 over a fresh root holding big.bin (~300 KiB) and small.txt. */
async function serve(t: ExecutionContext, opts: Partial<TftpServerOptions> = {}): Promise<Served> {
  const tmp = mkdtempSync(join(tmpdir(), 'hvnode-tftp-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const root = join(tmp, 'root');
  mkdirSync(root);
  writeFileSync(join(root, 'big.bin'), randomBytes(300 * 1024 + 77));
  writeFileSync(join(root, 'small.txt'), 'hello pxe\n');
  const server = createTftpServer({ root, host: HOST, port: 0, timeoutMs: 200, ...opts });
  t.teardown(() => server.close());
  const { port } = await server.listen();
  return { server, port, root, tmp };
}

const file = (s: Served, name: string) => readFileSync(join(s.root, name));

/** Asserts the server still serves a whole file after whatever the test did to it. */
async function stillServes(t: ExecutionContext, s: Served): Promise<void> {
  const got = await tftpGet({ host: HOST, port: s.port, file: 'small.txt', deadlineMs: 3000 });
  t.true(got.complete, `still serving: ${got.outcome}`);
  t.is(got.data.toString(), 'hello pxe\n');
}

test('curl downloads a file, with and without --tftp-blksize 1468', async (t) => {
  const s = await serve(t);
  for (const extra of [[], ['--tftp-blksize', '1468']]) {
    const out = join(s.tmp, `out${extra.length}`);
    await run('curl', ['-sS', '--max-time', '10', ...extra, '-o', out, `tftp://${HOST}:${s.port}/big.bin`]);
    t.is(sha(readFileSync(out)), sha(file(s, 'big.bin')), `curl ${extra.join(' ')}`);
  }
  t.is(s.server.stats().transfersCompleted, 2);
  t.is(s.server.stats().bytesSent, 2 * file(s, 'big.bin').length);
});

test("tftp-hpa's tftp client downloads a file in binary mode", async (t) => {
  const s = await serve(t);
  const out = join(s.tmp, 'out');
  await run('tftp', ['-m', 'binary', HOST, String(s.port), '-c', 'get', 'big.bin', out], { timeout: 10_000 });
  t.is(sha(readFileSync(out)), sha(file(s, 'big.bin')));
  t.is(s.server.stats().transfersCompleted, 1);
});

test("node-tftp's client downloads a file (blksize 1468, windowsize 4)", async (t) => {
  const s = await serve(t);
  const out = join(s.tmp, 'out');
  const nodeTftp = createRequire(import.meta.url)('tftp') as {
    createClient(o: object): { get(remote: string, local: string, cb: (err?: Error) => void): void };
  };
  const client = nodeTftp.createClient({ host: HOST, port: s.port, timeout: 1000 });
  await new Promise<void>((resolve, reject) =>
    client.get('big.bin', out, (err) => (err ? reject(err) : resolve())),
  );
  t.is(sha(readFileSync(out)), sha(file(s, 'big.bin')));
});

test('curl over IPv6 (::1)', async (t) => {
  const s = await serve(t, { host: '::1' });
  const out = join(s.tmp, 'out');
  await run('curl', ['-sS', '--max-time', '10', '-o', out, `tftp://[::1]:${s.port}/small.txt`]);
  t.is(readFileSync(out, 'utf8'), 'hello pxe\n');
});

test('options: blksize and windowsize are clamped, tsize and timeout answered in the OACK', async (t) => {
  const s = await serve(t, { blksizeMax: 1024, windowsizeMax: 8 });
  const got = await tftpGet({
    host: HOST,
    port: s.port,
    file: 'big.bin',
    options: { blksize: 9000, windowsize: 64, tsize: 0, timeout: 3, frobnicate: 1 },
  });
  t.true(got.complete);
  t.deepEqual(
    Object.fromEntries(got.oack ?? []),
    { blksize: '1024', windowsize: '8', tsize: String(file(s, 'big.bin').length), timeout: '3' },
    'unknown options are left out of the OACK',
  );
  t.is(sha(got.data), sha(file(s, 'big.bin')));
  t.is(got.dataPacketsReceived, got.blocks, 'no loss: every block sent once');
  t.is(got.ackSent, Math.ceil(got.blocks / 8) + 1, 'one ACK per window of 8, plus ACK 0');
});

test('windowsize 16: a whole window per ACK, bytes identical', async (t) => {
  const s = await serve(t);
  const got = await tftpGet({
    host: HOST,
    port: s.port,
    file: 'big.bin',
    options: { blksize: 1468, windowsize: 16 },
  });
  t.true(got.complete);
  t.is(sha(got.data), sha(file(s, 'big.bin')));
  const blocks = Math.floor(file(s, 'big.bin').length / 1468) + 1;
  t.is(got.blocks, blocks);
  t.is(s.server.stats().dataPacketsSent, blocks);
});

test('block numbers roll over past 65535 to 0', async (t) => {
  const s = await serve(t);
  const data = randomBytes(70_000 * 16 + 5);
  writeFileSync(join(s.root, 'long.bin'), data);
  const got = await tftpGet({
    host: HOST,
    port: s.port,
    file: 'long.bin',
    options: { blksize: 16, windowsize: 16 },
    deadlineMs: 15_000,
  });
  t.true(got.complete, got.outcome);
  t.is(got.blocks, 70_001);
  t.is(sha(got.data), sha(data));
});

test('5% seeded loss and a duplicate ACK every 100 blocks: complete, identical, no packet storm', async (t) => {
  const s = await serve(t, { timeoutMs: 40, retries: 8 });
  for (const [seed, options] of [
    [7, { blksize: 512 }],
    [11, { blksize: 512, windowsize: 8 }],
  ] as const) {
    const before = s.server.stats();
    const got = await tftpGet({
      host: HOST,
      port: s.port,
      file: 'big.bin',
      options,
      loss: 0.05,
      seed,
      dupAckEvery: 100,
      resendMs: 100,
      deadlineMs: 20_000,
    });
    t.true(got.complete, `${JSON.stringify(options)}: ${got.outcome}`);
    t.is(sha(got.data), sha(file(s, 'big.bin')));
    const after = s.server.stats();
    const sent = after.dataPacketsSent - before.dataPacketsSent;
    const retransmits = after.retransmits - before.retransmits;
    const rewinds = after.windowRewinds - before.windowRewinds;
    t.log(
      `${JSON.stringify(options)}: ${got.blocks} blocks, ${sent} DATA sent, ${retransmits} on timeout, ${rewinds} window rewinds`,
    );
    t.true(retransmits > 0, 'the loss did happen');
    t.true(sent <= got.blocks * 1.1 + retransmits + rewinds, `${sent} DATA for ${got.blocks} blocks`);
    if (!('windowsize' in options)) t.is(rewinds, 0);
  }
});

/** A raw session: sends pkt from a fresh socket and collects what comes back for waitMs. */
async function collect(
  port: number,
  pkt: Buffer,
  waitMs: number,
  onReply?: (p: Reply, reply: (b: Buffer) => void) => void,
  bindAddress = HOST,
): Promise<Reply[]> {
  const socket = dgram.createSocket('udp4');
  const got: Reply[] = [];
  await new Promise<void>((r) => socket.bind(0, bindAddress, () => r()));
  socket.on('message', (msg, rinfo) => {
    const p = parseReply(msg);
    got.push(p);
    onReply?.(p, (b) => socket.send(b, rinfo.port, rinfo.address));
  });
  socket.send(pkt, port, HOST);
  await new Promise((r) => setTimeout(r, waitMs));
  socket.close();
  return got;
}

test('no DATA before the OACK is acknowledged; the OACK is retransmitted a bounded number of times', async (t) => {
  const s = await serve(t, { timeoutMs: 50, retries: 3 });
  const got = await collect(s.port, encodeRequest('big.bin', { blksize: 1024 }), 600);
  t.deepEqual(
    got.map((p) => p.op),
    [Op.OACK, Op.OACK, Op.OACK, Op.OACK, Op.ERROR],
    'the OACK once plus 3 retries, then a timeout ERROR',
  );
  t.is(s.server.stats().dataPacketsSent, 0);
  t.is(s.server.stats().transfersFailed, 1);
});

test('a duplicate ACK is ignored (no Sorcerer’s Apprentice), a timeout re-sends the block', async (t) => {
  const s = await serve(t, { timeoutMs: 300 });
  let acked = false;
  const got = await collect(s.port, encodeRequest('big.bin'), 200, (p, reply) => {
    if (p.op === Op.DATA && p.block === 1 && !acked) {
      acked = true;
      reply(encodeAck(1));
      reply(encodeAck(1));
      reply(encodeAck(1));
    }
  });
  t.deepEqual(
    got.map((p) => (p.op === Op.DATA ? p.block : p.op)),
    [1, 2],
    'three ACKs of block 1 earn exactly one DATA 2',
  );
  // and block 2 is re-sent only by the timer
  const s2 = await serve(t, { timeoutMs: 50, retries: 2 });
  const late = await collect(s2.port, encodeRequest('small.txt'), 400);
  t.deepEqual(
    late.map((p) => (p.op === Op.DATA ? p.block : p.op)),
    [1, 1, 1, Op.ERROR],
  );
  t.regex(late.at(-1)?.op === Op.ERROR ? (late.at(-1) as { message: string }).message : '', /timed out/);
  t.is(s2.server.stats().retransmits, 2);
});

test('a re-sent RRQ from the same endpoint does not start a second transfer', async (t) => {
  const s = await serve(t, { timeoutMs: 1000 });
  const socket = dgram.createSocket('udp4');
  const got: Reply[] = [];
  socket.on('message', (msg) => got.push(parseReply(msg)));
  await new Promise<void>((r) => socket.bind(0, HOST, () => r()));
  socket.send(encodeRequest('big.bin'), s.port, HOST);
  socket.send(encodeRequest('big.bin'), s.port, HOST);
  await new Promise((r) => setTimeout(r, 200));
  socket.close();
  t.deepEqual(
    got.map((p) => (p.op === Op.DATA ? p.block : p.op)),
    [1],
  );
  t.is(s.server.stats().sessionsStarted, 1);
});

test('windowsize: an ACK inside the window restarts the window after it', async (t) => {
  const s = await serve(t, { timeoutMs: 1000 });
  let phase = 0;
  const got = await collect(s.port, encodeRequest('big.bin', { windowsize: 4 }), 200, (p, reply) => {
    if (p.op === Op.OACK) reply(encodeAck(0));
    if (p.op === Op.DATA && p.block === 4 && phase === 0) {
      phase = 1;
      reply(encodeAck(2)); // "3 and 4 did not arrive"
    }
  });
  t.deepEqual(
    got.map((p) => (p.op === Op.DATA ? p.block : p.op)),
    [Op.OACK, 1, 2, 3, 4, 3, 4, 5, 6],
  );
  t.is(s.server.stats().windowRewinds, 2);
});

test('the resolve hook serves generated files first and falls back to the root', async (t) => {
  const asked: Array<[string, string]> = [];
  const s = await serve(t, {
    resolve: async (name, client) => {
      asked.push([name, client.address]);
      return name.startsWith('pxelinux.cfg/01-')
        ? Buffer.from(`DEFAULT node ${name.slice(16)}\n`)
        : undefined;
    },
  });
  const cfg = await tftpGet({ host: HOST, port: s.port, file: '/pxelinux.cfg/01-52-54-00-12-34-56' });
  t.is(cfg.data.toString(), 'DEFAULT node 52-54-00-12-34-56\n');
  const plain = await tftpGet({ host: HOST, port: s.port, file: 'small.txt', options: { tsize: 0 } });
  t.is(plain.data.toString(), 'hello pxe\n');
  t.is(plain.oack?.get('tsize'), '10');
  t.deepEqual(asked, [
    ['pxelinux.cfg/01-52-54-00-12-34-56', HOST],
    ['small.txt', HOST],
  ]);
});

test('the resolve hook may name a file to stream (an image kept outside the root); not a directory', async (t) => {
  const s = await serve(t, {
    resolve: async (name) =>
      name === 'images/1/initrd0.img'
        ? { path: join(s.tmp, 'kept', 'initrd0.img') }
        : name === 'images/1/dir'
          ? { path: join(s.tmp, 'kept') }
          : undefined,
  });
  mkdirSync(join(s.tmp, 'kept'));
  const big = randomBytes(3 * 1468 + 17);
  writeFileSync(join(s.tmp, 'kept', 'initrd0.img'), big);
  const got = await tftpGet({
    host: HOST,
    port: s.port,
    file: 'images/1/initrd0.img',
    options: { blksize: 1468, tsize: 0 },
  });
  t.true(got.data.equals(big));
  t.is(got.oack?.get('tsize'), String(big.length));
  const dir = await tftpGet({ host: HOST, port: s.port, file: 'images/1/dir' });
  t.is(dir.outcome, 'error', 'a directory named by the hook is refused');
  t.is(dir.error?.code, 2);
});

test('hostile names, a symlink out of the root and a directory are refused with ERROR 1 or 2', async (t) => {
  const s = await serve(t);
  writeFileSync(join(s.tmp, 'secret'), 'secret\n');
  symlinkSync(join(s.tmp, 'secret'), join(s.root, 'escape'));
  symlinkSync('/etc', join(s.root, 'etcdir'));
  symlinkSync('small.txt', join(s.root, 'inside-link'));
  mkdirSync(join(s.root, 'sub'));
  const cases: Array<[string, number]> = [
    ['../secret', 2],
    ['a/../../secret', 2],
    ['sub/../../secret', 2],
    ['/etc/passwd', 1], // a leading '/' is stripped: root/etc/passwd does not exist
    ['..\\secret', 2],
    ['sub\\..\\..\\secret', 2],
    ['escape', 2],
    ['etcdir/passwd', 2],
    ['sub', 2],
    ['.', 1],
    ['missing', 1],
    ['small\x01.txt', 2],
  ];
  for (const [name, code] of cases) {
    const got = await tftpGet({ host: HOST, port: s.port, file: name, deadlineMs: 2000 });
    t.is(got.outcome, 'error', name);
    t.is(got.error?.code, code, `${JSON.stringify(name)}: ${got.error?.message}`);
    t.is(got.data.length, 0);
  }
  // a NUL inside the name splits it: "small.txt" with mode "x" is an unknown mode
  const nul = await tftpExchange(HOST, s.port, Buffer.from('\0\x01small.txt\0x\0octet\0', 'latin1'));
  t.is(nul?.op, Op.ERROR);
  const inside = await tftpGet({ host: HOST, port: s.port, file: 'inside-link' });
  t.is(inside.data.toString(), 'hello pxe\n', 'a symlink that stays inside the root is fine');
  await stillServes(t, s);
});

test('WRQ, netascii, bad options and malformed packets get ERROR packets; ERRORs are not answered', async (t) => {
  const s = await serve(t);
  const expectError = async (pkt: Buffer, code: number, message: RegExp) => {
    const r = await tftpExchange(HOST, s.port, pkt);
    t.is(r?.op, Op.ERROR, pkt.toString('latin1'));
    if (r?.op === Op.ERROR) {
      t.is(r.code, code, r.message);
      t.regex(r.message, message);
    }
  };
  await expectError(encodeRequest('new.bin', {}, 'octet', Op.WRQ), 2, /read-only/);
  await expectError(encodeRequest('small.txt', {}, 'netascii'), 4, /netascii.*octet/);
  await expectError(encodeRequest('small.txt', {}, 'mail'), 4, /mail/);
  await expectError(encodeRequest('small.txt', { blksize: 4 }), 8, /blksize/);
  await expectError(encodeRequest('small.txt', { windowsize: 0 }), 8, /windowsize/);
  await expectError(Buffer.from([0, 1]), 4, /short/);
  await expectError(Buffer.from([0, 9, 0x61, 0, 0x62, 0]), 4, /opcode 9/);
  await expectError(Buffer.from('\0\x01small.txt\0octet', 'latin1'), 4, /NUL/);
  await expectError(
    Buffer.concat([Buffer.from([0, 1]), Buffer.alloc(600, 0x61), Buffer.from([0])]),
    4,
    /512/,
  );
  await expectError(encodeAck(1), 4, /not a request/);
  t.is(await tftpExchange(HOST, s.port, Buffer.from('\0\x05\0\x01oops\0', 'latin1'), 300), undefined);
  t.is(s.server.stats().errorsSent[4], 7);
  await stillServes(t, s);
});

test('ERROR replies are rate-limited', async (t) => {
  const s = await serve(t, { errorsPerSecond: 5 });
  const socket = dgram.createSocket('udp4');
  let replies = 0;
  socket.on('message', () => replies++);
  await new Promise<void>((r) => socket.bind(0, HOST, () => r()));
  for (let i = 0; i < 40; i++) socket.send(Buffer.from([0, 1]), s.port, HOST);
  await new Promise((r) => setTimeout(r, 300));
  socket.close();
  t.true(replies >= 4 && replies <= 7, `${replies} replies`);
  t.true(s.server.stats().errorsSuppressed >= 33);
});

test('per-source and global session caps: ERROR 3, then serving again once sessions end', async (t) => {
  const s = await serve(t, { maxSessionsPerSource: 2, maxSessions: 3, timeoutMs: 400, retries: 0 });
  // sessions that never ACK stay open until their timer gives up
  const hold = (from: string) => collect(s.port, encodeRequest('big.bin'), 150, undefined, from);
  const a = hold('127.0.0.1');
  const b = hold('127.0.0.1');
  await new Promise((r) => setTimeout(r, 50));
  const third = await collect(s.port, encodeRequest('big.bin'), 100);
  t.like(third[0], { op: Op.ERROR, code: 3, message: 'too many sessions from this address' });
  const other = hold('127.0.0.2');
  await new Promise((r) => setTimeout(r, 50));
  const fourth = await collect(s.port, encodeRequest('big.bin'), 100, undefined, '127.0.0.3');
  t.like(fourth[0], { op: Op.ERROR, code: 3, message: 'too many sessions' });
  await Promise.all([a, b, other]);
  await new Promise((r) => setTimeout(r, 500));
  t.is(s.server.stats().sessionsActive, 0);
  t.is(s.server.stats().errorsSent[3], 2);
  await stillServes(t, s);
});

test('close() aborts transfers in flight with an ERROR and resolves', async (t) => {
  const s = await serve(t, { timeoutMs: 5000 });
  const pending = collect(s.port, encodeRequest('big.bin'), 300);
  await new Promise((r) => setTimeout(r, 100));
  t.is(s.server.stats().sessionsActive, 1);
  await s.server.close();
  const got = await pending;
  t.like(got.at(-1), { op: Op.ERROR, message: 'server shutting down' });
  t.is(s.server.stats().sessionsActive, 0);
  t.is(s.server.stats().transfersFailed, 1);
});

test('listen() on a missing root names it', async (t) => {
  const server = createTftpServer({ root: '/nonexistent/tftp', host: HOST, port: 0 });
  await t.throwsAsync(server.listen(), { message: /not a directory/ });
});
