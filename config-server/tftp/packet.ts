// TFTP packet codec (RFC 1350, options per RFC 2347). Pure functions over Buffers, shared by the
// server and the test/bench clients, so that both sides agree on one reading of the wire format.

export const Op = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

/** RFC 1350 error codes (8 from RFC 2347). */
export const ErrorCode = {
  notDefined: 0,
  fileNotFound: 1,
  accessViolation: 2,
  diskFull: 3,
  illegalOperation: 4,
  unknownTid: 5,
  fileExists: 6,
  noSuchUser: 7,
  optionRefused: 8,
} as const;

/** RFC 1350 caps a request at one 512-byte datagram; anything longer is not a TFTP request. */
export const MAX_REQUEST_BYTES = 512;

export interface Request {
  op: typeof Op.RRQ | typeof Op.WRQ;
  file: string;
  /** lower-cased */
  mode: string;
  /** option names lower-cased (RFC 2347: case-insensitive); later duplicates win */
  options: Map<string, string>;
}

/** Why a datagram is not a well-formed request (the text goes into the ERROR packet). */
export class MalformedPacket extends Error {}

/**
 * Reads an RRQ/WRQ. Names are decoded as latin1 so that every byte maps to one character and a
 * hostile byte sequence cannot hide a '/' or '\' behind a multi-byte decoding.
 */
export function parseRequest(msg: Buffer): Request {
  if (msg.length > MAX_REQUEST_BYTES)
    throw new MalformedPacket(`request longer than ${MAX_REQUEST_BYTES} bytes`);
  if (msg.length < 4) throw new MalformedPacket('packet too short');
  const op = msg.readUInt16BE(0);
  if (op !== Op.RRQ && op !== Op.WRQ) throw new MalformedPacket(`opcode ${op} is not a request`);
  if (msg[msg.length - 1] !== 0) throw new MalformedPacket('request does not end with a NUL byte');
  const fields = msg.toString('latin1', 2, msg.length - 1).split('\0');
  const [file, mode, ...rest] = fields;
  if (!file || mode === undefined) throw new MalformedPacket('request needs a file name and a mode');
  if (rest.length % 2 !== 0) throw new MalformedPacket('option without a value');
  const options = new Map<string, string>();
  for (let i = 0; i < rest.length; i += 2)
    options.set((rest[i] as string).toLowerCase(), rest[i + 1] as string);
  return { op, file, mode: mode.toLowerCase(), options };
}

export function encodeRequest(
  file: string,
  options: Record<string, string | number> = {},
  mode = 'octet',
  op: number = Op.RRQ,
): Buffer {
  const parts = [file, mode, ...Object.entries(options).flatMap(([k, v]) => [k, String(v)])];
  return Buffer.concat([u16(op), Buffer.from(`${parts.join('\0')}\0`, 'latin1')]);
}

export function encodeData(block: number, payload: Buffer): Buffer {
  const pkt = Buffer.allocUnsafe(4 + payload.length);
  pkt.writeUInt16BE(Op.DATA, 0);
  pkt.writeUInt16BE(block & 0xffff, 2);
  payload.copy(pkt, 4);
  return pkt;
}

export function encodeAck(block: number): Buffer {
  return Buffer.from([0, Op.ACK, (block >> 8) & 0xff, block & 0xff]);
}

export function encodeError(code: number, message: string): Buffer {
  return Buffer.concat([u16(Op.ERROR), u16(code), Buffer.from(`${message}\0`, 'latin1')]);
}

export function encodeOack(options: Map<string, string>): Buffer {
  const body = [...options].flatMap(([k, v]) => [k, v]).join('\0');
  return Buffer.concat([u16(Op.OACK), Buffer.from(`${body}\0`, 'latin1')]);
}

/** Any packet after the request, as a client or server sees it. */
export type Reply =
  | { op: typeof Op.DATA; block: number; payload: Buffer }
  | { op: typeof Op.ACK; block: number }
  | { op: typeof Op.ERROR; code: number; message: string }
  | { op: typeof Op.OACK; options: Map<string, string> }
  | { op: 'other'; opcode: number };

export function parseReply(msg: Buffer): Reply {
  const opcode = msg.length >= 2 ? msg.readUInt16BE(0) : -1;
  if (opcode === Op.DATA && msg.length >= 4)
    return { op: Op.DATA, block: msg.readUInt16BE(2), payload: msg.subarray(4) };
  if (opcode === Op.ACK && msg.length >= 4) return { op: Op.ACK, block: msg.readUInt16BE(2) };
  if (opcode === Op.ERROR && msg.length >= 4) {
    const end = msg.indexOf(0, 4);
    return {
      op: Op.ERROR,
      code: msg.readUInt16BE(2),
      message: msg.toString('latin1', 4, end < 0 ? msg.length : end),
    };
  }
  if (opcode === Op.OACK) {
    const fields = msg.toString('latin1', 2).split('\0');
    const options = new Map<string, string>();
    for (let i = 0; i + 1 < fields.length; i += 2)
      options.set((fields[i] as string).toLowerCase(), fields[i + 1] as string);
    return { op: Op.OACK, options };
  }
  return { op: 'other', opcode };
}

function u16(n: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(n, 0);
  return b;
}
