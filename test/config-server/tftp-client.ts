// A raw-UDP TFTP read client for tests and the bench: lock-step or windowed (RFC 7440), with
// seeded packet loss and duplicate ACKs injected, and a count of every packet the server sent.
// It behaves as a PXE ROM does where that matters: it re-sends its last ACK after a silence.
// For many clients at once (the boot-storm bench): each may bind its own source address, and
// hand the payloads to a sink instead of keeping them (hundreds of initrds do not fit in memory).

import dgram from 'node:dgram';
import { encodeAck, encodeRequest, Op, parseReply, type Reply } from '../../config-server/tftp/packet.ts';
import { mulberry32 } from '../helpers/prng.ts';

export interface GetOptions {
  host: string;
  port: number;
  file: string;
  /** RRQ options, e.g. { blksize: 1468, windowsize: 16, tsize: 0 } */
  options?: Record<string, string | number>;
  /** Probability of dropping each packet, in both directions (seeded: runs repeat exactly). */
  loss?: number;
  seed?: number;
  /** Send the ACK of every block that is a multiple of this twice. */
  dupAckEvery?: number;
  /** Send the ACK of these blocks twice. */
  dupAckAt?: number[];
  /** Silence after which the last ACK (or the RRQ) is sent again (default 500). */
  resendMs?: number;
  /** Re-sends in a row without progress before giving up as stalled (default 10). */
  maxResends?: number;
  /** Hard limit for the whole transfer (default 10 s). */
  deadlineMs?: number;
  /** Stop once the server has sent this many packets (a runaway server). */
  maxPackets?: number;
  /** Bind the client's socket to this address (e.g. 127.0.0.N: a distinct source per client). */
  localAddress?: string;
  /** Each payload, in order, goes here instead of into `data` (which is then empty). */
  sink?: (payload: Buffer) => void;
}

export interface GetResult {
  data: Buffer;
  complete: boolean;
  /** why it stopped: complete, error, stalled, deadline, packet limit */
  outcome: 'complete' | 'error' | 'stalled' | 'deadline' | 'packet limit';
  error?: { code: number; message: string };
  oack?: Map<string, string>;
  /** Every packet the server sent that reached the socket (dropped ones included). */
  packetsReceived: number;
  dataPacketsReceived: number;
  /** Distinct blocks the file needed. */
  blocks: number;
  ackSent: number;
  /** Payload bytes received in order (data.length unless a sink took them). */
  bytes: number;
  /** Packets (the RRQ or an ACK) this client sent again: after a silence, or on a repeated DATA. */
  resent: number;
  ms: number;
}

/** A seeded PRNG, so that a lossy run can be repeated exactly. */
export const seeded = mulberry32;

export function tftpGet(o: GetOptions): Promise<GetResult> {
  const socket = dgram.createSocket(o.host.includes(':') ? 'udp6' : 'udp4');
  const random = seeded(o.seed ?? 1);
  const drop = () => (o.loss ?? 0) > 0 && random() < (o.loss ?? 0);
  const asked = o.options ?? {};
  const chunks: Buffer[] = [];
  const t0 = performance.now();
  let tid: number | undefined;
  let blksize = 512;
  let windowsize = 1;
  let expected = 1; // next block wanted, internal numbering (the wire has the low 16 bits)
  let inWindow = 0;
  let resends = 0;
  let lastSent = encodeRequest(o.file, asked);
  let gapAcked = false;
  let done = false;
  let inFlight = 0;
  const r: Omit<GetResult, 'data' | 'complete' | 'outcome' | 'ms'> = {
    packetsReceived: 0,
    dataPacketsReceived: 0,
    blocks: 0,
    ackSent: 0,
    bytes: 0,
    resent: 0,
  };

  return new Promise<GetResult>((resolve) => {
    const send = (pkt: Buffer, port = tid ?? o.port) => {
      lastSent = pkt;
      if (pkt.readUInt16BE(0) === Op.ACK) r.ackSent++;
      if (drop()) return;
      inFlight++;
      socket.send(pkt, port, o.host, () => {
        if (--inFlight === 0 && done) socket.close();
      });
    };
    const ack = (block: number) => {
      send(encodeAck(block & 0xffff));
      const dup = (o.dupAckEvery && block % o.dupAckEvery === 0) || o.dupAckAt?.includes(block);
      if (dup && block > 0) send(encodeAck(block & 0xffff));
    };
    const finish = (outcome: GetResult['outcome']) => {
      if (done) return;
      done = true;
      clearInterval(watch);
      clearTimeout(deadline);
      // the last ACK must leave before the socket closes (a send is queued, not done, on return)
      if (inFlight === 0) socket.close();
      const data = Buffer.concat(chunks);
      resolve({
        ...r,
        blocks: expected - 1,
        data,
        complete: outcome === 'complete',
        outcome,
        ms: performance.now() - t0,
      });
    };
    let progressAt = performance.now();
    const resendMs = o.resendMs ?? 500;
    const watch = setInterval(
      () => {
        if (performance.now() - progressAt < resendMs) return;
        if (++resends > (o.maxResends ?? 10)) return finish('stalled');
        progressAt = performance.now();
        r.resent++;
        send(lastSent);
      },
      Math.max(10, resendMs / 5),
    );
    const deadline = setTimeout(() => finish('deadline'), o.deadlineMs ?? 10_000);

    socket.on('message', (msg, rinfo) => {
      if (done || (tid !== undefined && rinfo.port !== tid)) return;
      r.packetsReceived++;
      if (o.maxPackets && r.packetsReceived > o.maxPackets) return finish('packet limit');
      const p: Reply = parseReply(msg);
      if (p.op === Op.DATA) r.dataPacketsReceived++;
      if (drop()) return;
      tid ??= rinfo.port;
      if (p.op === Op.ERROR) {
        r.error = { code: p.code, message: p.message };
        return finish('error');
      }
      if (p.op === Op.OACK && expected === 1 && inWindow === 0) {
        r.oack = p.options;
        blksize = Number(p.options.get('blksize') ?? 512);
        windowsize = Number(p.options.get('windowsize') ?? 1);
        progressAt = performance.now();
        return ack(0);
      }
      if (p.op !== Op.DATA) return;
      if (p.block === ((expected - 1) & 0xffff) && expected > 1) {
        // the server timed out waiting for our last ACK (lost): say it again, as ROMs do
        r.resent++;
        return send(lastSent);
      }
      if (p.block !== (expected & 0xffff)) {
        // a gap in a window: ACK what arrived in order once, so the server restarts from there
        // (RFC 7440); stale duplicates are ignored, as they must be (RFC 1123 4.2.3.1)
        const ahead = (p.block - expected) & 0xffff;
        if (windowsize > 1 && ahead > 0 && ahead < windowsize && !gapAcked) {
          gapAcked = true;
          inWindow = 0;
          ack(expected - 1);
        }
        return;
      }
      if (o.sink) o.sink(p.payload);
      else chunks.push(Buffer.from(p.payload));
      r.bytes += p.payload.length;
      expected++;
      inWindow++;
      gapAcked = false;
      resends = 0;
      progressAt = performance.now();
      if (p.payload.length < blksize) {
        ack(expected - 1);
        return finish('complete');
      }
      if (inWindow >= windowsize) {
        inWindow = 0;
        ack(expected - 1);
      }
    });
    socket.bind(0, o.localAddress, () => send(lastSent, o.port));
  });
}

/** Sends one datagram and returns the first reply (undefined after waitMs of silence). */
export function tftpExchange(
  host: string,
  port: number,
  pkt: Buffer,
  waitMs = 1000,
): Promise<(Reply & { from: number }) | undefined> {
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.close();
      resolve(undefined);
    }, waitMs);
    socket.on('message', (msg, rinfo) => {
      clearTimeout(timer);
      socket.close();
      resolve({ ...parseReply(msg), from: rinfo.port });
    });
    socket.send(pkt, port, host);
  });
}
