// A small read-only TFTP server for PXE (RFC 1350 + options: 2347 negotiation, 2348 blksize,
// 2349 tsize/timeout, 7440 windowsize). Why our own and not node-tftp's: see config-server/README.md.
//
// The rules that matter, and why:
// - DATA is retransmitted only when the retransmission timer fires; duplicate ACKs are ignored.
//   Answering each duplicate ACK with DATA doubles the traffic at every loss (RFC 1123 4.2.3.1,
//   the Sorcerer's Apprentice), and every PXE ROM re-sends its last ACK when it gets impatient.
// - With options, nothing but the OACK goes out until the client ACKs block 0: a spoofed RRQ
//   then earns its fake source one small packet (and a few timer retransmits), not a file.
// - Each transfer gets its own socket bound to the address the server listens on (Node cannot
//   pick the reply source per packet), connected to the client so the kernel drops strangers.
// - Names are contained on the resolved real path (files.ts), so symlinks out of the root fail.

import dgram from 'node:dgram';
import { realpath, stat } from 'node:fs/promises';
import { HvError } from '../../common/index.ts';
import { bufferSource, cleanName, openInRoot, Refusal, type Source } from './files.ts';
import {
  ErrorCode,
  encodeData,
  encodeError,
  encodeOack,
  MalformedPacket,
  Op,
  parseReply,
  parseRequest,
  type Request,
} from './packet.ts';

export interface TftpClient {
  address: string;
  port: number;
}

export interface TftpLogEntry {
  level: 'info' | 'warn';
  msg: string;
  client: string;
  file?: string;
  [key: string]: unknown;
}

export interface TftpServerOptions {
  /** Directory served; every file is checked to be inside realpath(root). */
  root: string;
  /** A specific address (replies leave from it); udp6 when it contains ':'. */
  host: string;
  /** 0: an ephemeral port (tests). */
  port: number;
  /**
   * Consulted first with the cleaned name: the bytes to send (a generated per-MAC config), or an
   * absolute path the caller has already contained (an image's kernel and initrd: streamed, not
   * read into memory); undefined falls through to `root`.
   */
  resolve?: (file: string, client: TftpClient) => Promise<Buffer | { path: string } | undefined>;
  /** Concurrent transfers in all (default 256). */
  maxSessions?: number;
  /** Concurrent transfers per source address (default 8). */
  maxSessionsPerSource?: number;
  /** Timer retransmissions of one packet before giving up (default 5). */
  retries?: number;
  /** Retransmission timer when the client sends no `timeout` option (default 1000). */
  timeoutMs?: number;
  /** Largest blksize granted (default 1468: a 1500-byte MTU less IP/UDP/TFTP headers). */
  blksizeMax?: number;
  /** Largest windowsize granted (default 16). */
  windowsizeMax?: number;
  /** ERROR packets per second the listening socket may send (default 100): refusals are not an amplifier. */
  errorsPerSecond?: number;
  log?: (entry: TftpLogEntry) => void;
}

export interface TftpStats {
  sessionsActive: number;
  sessionsStarted: number;
  transfersCompleted: number;
  transfersFailed: number;
  /** DATA payload bytes, retransmissions included. */
  bytesSent: number;
  /** Every datagram sent: DATA, OACK and ERROR. */
  packetsSent: number;
  dataPacketsSent: number;
  /** DATA/OACK packets re-sent because the retransmission timer fired. */
  retransmits: number;
  /** DATA re-sent because a windowed client ACKed part of a window (RFC 7440). */
  windowRewinds: number;
  /** ERROR packets sent, by code. */
  errorsSent: Record<number, number>;
  /** ERROR replies not sent because of the rate limit. */
  errorsSuppressed: number;
}

export interface TftpServer {
  listen(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
  stats(): TftpStats;
}

const DEFAULTS = {
  maxSessions: 256,
  maxSessionsPerSource: 8,
  retries: 5,
  timeoutMs: 1000,
  blksizeMax: 1468,
  windowsizeMax: 16,
  errorsPerSecond: 100,
};

/** Bytes read from the source at once: few reads per transfer, bounded memory per session. */
const CHUNK_BYTES = 128 * 1024;

export function createTftpServer(options: TftpServerOptions): TftpServer {
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  return new Server({ ...DEFAULTS, ...given } as Config);
}

type Config = Required<Omit<TftpServerOptions, 'resolve' | 'log'>> &
  Pick<TftpServerOptions, 'resolve' | 'log'>;

/** What the options of one request settled to. */
interface Negotiated {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /** The OACK to send; undefined when no option was accepted (plain RFC 1350: DATA 1 at once). */
  oack?: Map<string, string>;
}

class Server implements TftpServer {
  private socket?: dgram.Socket;
  private rootReal = '';
  private readonly family: 'udp4' | 'udp6';
  private readonly sessions = new Map<string, Session>();
  /** Slots reserved per source address, including requests still opening their file. */
  private readonly perSource = new Map<string, number>();
  /** Client endpoints with a session running or being set up (a re-sent RRQ is ignored). */
  private readonly endpoints = new Set<string>();
  private reserved = 0;
  private errorTokens: number;
  private errorRefill = Date.now();
  private closing = false;
  readonly counters: TftpStats = {
    sessionsActive: 0,
    sessionsStarted: 0,
    transfersCompleted: 0,
    transfersFailed: 0,
    bytesSent: 0,
    packetsSent: 0,
    dataPacketsSent: 0,
    retransmits: 0,
    windowRewinds: 0,
    errorsSent: {},
    errorsSuppressed: 0,
  };

  constructor(readonly config: Config) {
    this.family = config.host.includes(':') ? 'udp6' : 'udp4';
    this.errorTokens = config.errorsPerSecond;
  }

  async listen(): Promise<{ address: string; port: number }> {
    const { root, host, port } = this.config;
    const st = await stat(root).catch(() => undefined);
    if (!st?.isDirectory())
      throw new HvError('the TFTP root is not a directory', {
        where: root,
        hint: 'create it or pass --data DIR',
      });
    this.rootReal = await realpath(root);
    const socket = dgram.createSocket({ type: this.family });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', (err) =>
        reject(
          new HvError(`cannot listen for TFTP: ${err.message}`, { where: `${host}:${port}`, cause: err }),
        ),
      );
      socket.bind({ address: host, port, exclusive: true }, () => resolve());
    });
    socket.removeAllListeners('error');
    socket.on('error', (err) => this.log('warn', 'listener error', '-', { error: err.message }));
    socket.on('message', (msg, rinfo) => this.onRequest(msg, rinfo));
    this.socket = socket;
    const a = socket.address();
    return { address: a.address, port: a.port };
  }

  async close(): Promise<void> {
    this.closing = true;
    const socket = this.socket;
    this.socket = undefined;
    const closed = socket ? new Promise<void>((r) => socket.close(() => r())) : Promise.resolve();
    await Promise.all([
      closed,
      ...[...this.sessions.values()].map((s) => s.end('failed', 'server shutting down')),
    ]);
  }

  stats(): TftpStats {
    return {
      ...this.counters,
      errorsSent: { ...this.counters.errorsSent },
      sessionsActive: this.sessions.size,
    };
  }

  log(level: TftpLogEntry['level'], msg: string, client: string, extra: Record<string, unknown> = {}): void {
    this.config.log?.({ level, msg, client, ...extra });
  }

  countError(code: number): void {
    this.counters.errorsSent[code] = (this.counters.errorsSent[code] ?? 0) + 1;
    this.counters.packetsSent++;
  }

  private onRequest(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const client = { address: rinfo.address, port: rinfo.port };
    const who = `${rinfo.address}:${rinfo.port}`;
    let req: Request;
    try {
      req = parseRequest(msg);
    } catch (err) {
      // never answer an ERROR with an ERROR: two servers could ping-pong forever
      if (msg.length >= 2 && msg.readUInt16BE(0) === Op.ERROR) return;
      const text = err instanceof MalformedPacket ? err.message : 'malformed request';
      return this.refuse(client, new Refusal(ErrorCode.illegalOperation, text));
    }
    if (req.op === Op.WRQ)
      return this.refuse(
        client,
        new Refusal(ErrorCode.accessViolation, 'read-only server: writes are refused'),
      );
    if (req.mode !== 'octet') {
      const text =
        req.mode === 'netascii' || req.mode === 'mail'
          ? `mode ${req.mode} is not supported: use octet (binary)`
          : `unknown mode "${req.mode}"`;
      return this.refuse(client, new Refusal(ErrorCode.illegalOperation, text));
    }
    // A client re-sends its RRQ when the first answer is slow or lost; the session already
    // running for that endpoint retransmits on its own timer, so a second one would duplicate it.
    if (this.endpoints.has(who)) return;
    if (this.reserved >= this.config.maxSessions)
      return this.refuse(client, new Refusal(ErrorCode.diskFull, 'too many sessions'));
    const mine = this.perSource.get(rinfo.address) ?? 0;
    if (mine >= this.config.maxSessionsPerSource)
      return this.refuse(client, new Refusal(ErrorCode.diskFull, 'too many sessions from this address'));
    // Reserved before the file is opened, so that a burst of RRQs cannot overrun the caps
    // while their opens are in flight.
    this.reserved++;
    this.perSource.set(rinfo.address, mine + 1);
    this.endpoints.add(who);
    this.start(req, client).catch((err) => {
      this.log('warn', 'request failed', who, { file: req.file, error: (err as Error).message });
      this.refuse(client, new Refusal(ErrorCode.notDefined, 'internal error'));
      this.release(client);
    });
  }

  private async start(req: Request, client: TftpClient): Promise<void> {
    const who = `${client.address}:${client.port}`;
    const name = cleanName(req.file);
    const negotiated = name instanceof Refusal ? name : this.negotiate(req.options);
    const source =
      name instanceof Refusal
        ? name
        : negotiated instanceof Refusal
          ? negotiated
          : await this.open(name, client);
    if (source instanceof Refusal || negotiated instanceof Refusal || this.closing) {
      if (source instanceof Refusal) {
        this.log('warn', 'refused', who, { file: req.file, code: source.code, reason: source.message });
        this.refuse(client, source);
      } else await source.close();
      return this.release(client);
    }
    if (negotiated.oack?.has('tsize')) negotiated.oack.set('tsize', String(source.size));
    const socket = dgram.createSocket({ type: this.family });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ address: this.config.host, port: 0 }, () =>
          socket.connect(client.port, client.address, resolve),
        );
      });
    } catch (err) {
      socket.close();
      await source.close();
      throw err;
    }
    if (this.closing) {
      // close() began while the socket was being bound: it did not see this session
      socket.close();
      await source.close();
      return this.release(client);
    }
    socket.removeAllListeners('error');
    const session = new Session(this, socket, source, negotiated, client, req.file);
    this.sessions.set(who, session);
    this.counters.sessionsStarted++;
    this.log('info', 'transfer started', who, {
      file: req.file,
      size: source.size,
      blksize: negotiated.blksize,
      windowsize: negotiated.windowsize,
    });
    session.begin();
  }

  /** The resolve hook first (per-MAC configs made on the fly), then the root. */
  private async open(name: string, client: TftpClient): Promise<Source | Refusal> {
    const generated = await this.config.resolve?.(name, client);
    if (Buffer.isBuffer(generated)) return bufferSource(generated);
    // still opened as a regular file without following a last-moment symlink
    if (generated !== undefined) return openInRoot('/', generated.path.replace(/^\/+/, ''));
    return openInRoot(this.rootReal, name);
  }

  /** Options we grant (RFC 2347: unknown ones are dropped from the OACK, not refused). */
  private negotiate(opts: Map<string, string>): Negotiated | Refusal {
    const n: Negotiated = { blksize: 512, windowsize: 1, timeoutMs: this.config.timeoutMs };
    const oack = new Map<string, string>();
    const int = (v: string) => (/^\d{1,6}$/.test(v) ? Number(v) : Number.NaN);
    const blksize = opts.get('blksize');
    if (blksize !== undefined) {
      const v = int(blksize);
      if (!(v >= 8)) return new Refusal(ErrorCode.optionRefused, `blksize ${blksize} is not in 8..65464`);
      n.blksize = Math.min(v, 65464, this.config.blksizeMax);
      oack.set('blksize', String(n.blksize));
    }
    const windowsize = opts.get('windowsize');
    if (windowsize !== undefined) {
      const v = int(windowsize);
      if (!(v >= 1))
        return new Refusal(ErrorCode.optionRefused, `windowsize ${windowsize} is not in 1..65535`);
      n.windowsize = Math.min(v, 65535, this.config.windowsizeMax);
      oack.set('windowsize', String(n.windowsize));
    }
    const timeout = int(opts.get('timeout') ?? '');
    if (timeout >= 1 && timeout <= 255) {
      n.timeoutMs = timeout * 1000;
      oack.set('timeout', String(timeout));
    }
    // the real size is filled in once the file is open
    if (opts.get('tsize') === '0') oack.set('tsize', '0');
    if (oack.size > 0) n.oack = oack;
    return n;
  }

  /** An ERROR from the listening socket, under a token bucket (spoofed sources get little). */
  private refuse(client: TftpClient, refusal: Refusal): void {
    const now = Date.now();
    const rate = this.config.errorsPerSecond;
    this.errorTokens = Math.min(rate, this.errorTokens + ((now - this.errorRefill) / 1000) * rate);
    this.errorRefill = now;
    if (this.errorTokens < 1 || !this.socket) {
      this.counters.errorsSuppressed++;
      return;
    }
    this.errorTokens--;
    this.countError(refusal.code);
    this.socket.send(encodeError(refusal.code, refusal.message), client.port, client.address);
  }

  release(client: TftpClient): void {
    const { address } = client;
    this.endpoints.delete(`${address}:${client.port}`);
    this.reserved--;
    const left = (this.perSource.get(address) ?? 1) - 1;
    if (left > 0) this.perSource.set(address, left);
    else this.perSource.delete(address);
  }

  forget(session: Session): void {
    this.sessions.delete(session.who);
    this.release(session.client);
  }
}

/**
 * One read transfer. Blocks are numbered internally from 1 without limit; the wire carries the
 * low 16 bits, so a transfer past block 65535 rolls over to 0 as most clients expect.
 */
class Session {
  readonly who: string;
  private readonly blksize: number;
  private readonly windowsize: number;
  /** Internal number of the final (short, possibly empty) block. */
  private readonly lastBlock: number;
  /** Highest block the client has acknowledged; -1 while the OACK waits for ACK 0. */
  private acked: number;
  /** Last block of the window in flight. */
  private windowEnd = 0;
  private tries = 0;
  private timer?: NodeJS.Timeout;
  private reading = false;
  private done = false;
  /** Blocks per read from the source: ≥ CHUNK_BYTES and ≥ two windows. */
  private readonly chunkBlocks: number;
  /** The bytes of blocks chunk.first .. chunk.first + chunkBlocks - 1 (shorter at the end). */
  private chunk?: { first: number; data: Buffer };
  private ahead?: { first: number; data: Promise<Buffer> };

  constructor(
    private readonly server: Server,
    private readonly socket: dgram.Socket,
    private readonly source: Source,
    private readonly params: Negotiated,
    readonly client: TftpClient,
    private readonly file: string,
  ) {
    this.who = `${client.address}:${client.port}`;
    this.blksize = params.blksize;
    this.windowsize = params.windowsize;
    this.lastBlock = Math.floor(source.size / params.blksize) + 1;
    this.chunkBlocks = Math.max(Math.ceil(CHUNK_BYTES / params.blksize), 2 * params.windowsize);
    this.acked = params.oack ? -1 : 0;
    socket.on('message', (msg) => this.onPacket(msg));
    // ECONNREFUSED (ICMP port unreachable) included: the client is gone, stop now
    socket.on('error', (err) => void this.end('failed', undefined, err.message));
  }

  begin(): void {
    this.timer = setTimeout(() => this.onTimeout(), this.params.timeoutMs);
    if (this.params.oack) this.sendOack();
    else this.sendWindow();
  }

  private sendOack(): void {
    this.send(encodeOack(this.params.oack as Map<string, string>));
    this.timer?.refresh();
  }

  private onPacket(msg: Buffer): void {
    if (this.done) return;
    const p = parseReply(msg);
    if (p.op === Op.ERROR) return void this.end('failed', undefined, `client error ${p.code}: ${p.message}`);
    if (p.op !== Op.ACK) return void this.end('failed', 'only ACK packets are expected here');
    if (this.acked < 0) {
      if (p.block !== 0) return;
      this.acked = 0;
      this.tries = 0;
      return this.sendWindow();
    }
    // Map the 16-bit number onto the window in flight. Anything else (a duplicate of an
    // earlier ACK above all) is ignored: only the timer makes us send a block again.
    const k = this.acked + ((p.block - this.acked) & 0xffff);
    if (k <= this.acked || k > this.windowEnd) return;
    if (k < this.windowEnd) this.server.counters.windowRewinds += this.windowEnd - k;
    this.acked = k;
    this.tries = 0;
    if (k >= this.lastBlock) return void this.end('completed');
    this.sendWindow();
  }

  private onTimeout(): void {
    if (this.done) return;
    // a slow read is not the client's fault: wait for it
    if (this.reading) return void this.timer?.refresh();
    if (++this.tries > this.server.config.retries) return void this.end('failed', 'transfer timed out');
    if (this.acked < 0) {
      this.server.counters.retransmits++;
      return this.sendOack();
    }
    this.server.counters.retransmits += this.windowEnd - this.acked;
    this.sendWindow();
  }

  /** Sends blocks acked+1 .. acked+windowsize (RFC 7440: a window restarts after the last ACK). */
  private sendWindow(): void {
    const first = this.acked + 1;
    const last = Math.min(this.acked + this.windowsize, this.lastBlock);
    const chunk = this.chunk;
    if (!chunk || !covers(chunk, this.chunkBlocks, first, last)) return void this.refill(first, last);
    const c = this.server.counters;
    for (let b = first; b <= last; b++) {
      const at = (b - chunk.first) * this.blksize;
      const payload = chunk.data.subarray(at, at + this.blksize);
      this.send(encodeData(b, payload));
      c.dataPacketsSent++;
      c.bytesSent += payload.length;
    }
    this.windowEnd = last;
    this.timer?.refresh();
    // Read the next chunk once the window is past the middle of this one, so that a lock-step
    // transfer never waits on the thread pool. Chunks hold ≥ 2 windows, so the one read from
    // the middle covers whichever window first runs past the end of this one.
    const mid = chunk.first + (this.chunkBlocks >> 1);
    if (!this.ahead && last >= mid && chunk.first + this.chunkBlocks <= this.lastBlock)
      this.ahead = this.readChunk(mid);
  }

  private readChunk(first: number): { first: number; data: Promise<Buffer> } {
    const data = this.source.read((first - 1) * this.blksize, this.chunkBlocks * this.blksize);
    data.catch(() => {}); // awaited (and reported) in refill
    return { first, data };
  }

  private async refill(first: number, last: number): Promise<void> {
    this.reading = true;
    try {
      const ahead = this.ahead;
      this.ahead = undefined;
      const next = ahead && covers(ahead, this.chunkBlocks, first, last) ? ahead : this.readChunk(first);
      this.chunk = { first: next.first, data: await next.data };
    } catch (err) {
      return void this.end('failed', 'cannot read the file', (err as Error).message);
    } finally {
      this.reading = false;
    }
    if (!this.done && this.acked + 1 === first) this.sendWindow();
  }

  private send(pkt: Buffer): void {
    this.server.counters.packetsSent++;
    this.socket.send(pkt);
  }

  /** Ends the transfer once; an ERROR goes to the client when `tell` is given. */
  async end(outcome: 'completed' | 'failed', tell?: string, detail?: string): Promise<void> {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    const c = this.server.counters;
    if (outcome === 'completed') c.transfersCompleted++;
    else c.transfersFailed++;
    // closing the socket only once the ERROR has left it
    const sent = new Promise<void>((r) => {
      if (!tell) return r();
      this.server.countError(ErrorCode.notDefined);
      this.socket.send(encodeError(ErrorCode.notDefined, tell), () => r());
    });
    this.server.forget(this);
    this.server.log(outcome === 'completed' ? 'info' : 'warn', `transfer ${outcome}`, this.who, {
      file: this.file,
      ...(tell || detail ? { reason: detail ?? tell } : {}),
    });
    await sent;
    await Promise.all([
      this.source.close().catch(() => {}),
      new Promise<void>((r) => this.socket.close(() => r())),
    ]);
  }
}

/** Whether a chunk starting at block `chunk.first` holds blocks first..last. */
function covers(chunk: { first: number }, blocks: number, first: number, last: number): boolean {
  return first >= chunk.first && last < chunk.first + blocks;
}
