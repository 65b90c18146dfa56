// crypt(3) SHA-512 ("$6$", Ulrich Drepper's SHA-crypt specification), for the admin password the
// installer and the Security screen set: NodeConfig holds only crypt hashes (adminpw=).

import { createHash, randomBytes } from 'node:crypto';

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ORDER = [
  [0, 21, 42],
  [22, 43, 1],
  [44, 2, 23],
  [3, 24, 45],
  [25, 46, 4],
  [47, 5, 26],
  [6, 27, 48],
  [28, 49, 7],
  [50, 8, 29],
  [9, 30, 51],
  [31, 52, 10],
  [53, 11, 32],
  [12, 33, 54],
  [34, 55, 13],
  [56, 14, 35],
  [15, 36, 57],
  [37, 58, 16],
  [59, 17, 38],
  [18, 39, 60],
  [40, 61, 19],
  [62, 20, 41],
] as const;

const sha512 = (...parts: Buffer[]) => {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** `bytes` repeated and cut to `length`. */
function stretch(bytes: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i += bytes.length) bytes.copy(out, i, 0, Math.min(bytes.length, length - i));
  return out;
}

function encode(w: number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) {
    s += ITOA64[w & 0x3f];
    w >>>= 6;
  }
  return s;
}

/** `$6$SALT$HASH` of `password` (5000 rounds, the default; salt: 16 random characters). */
export function sha512Crypt(password: string, salt?: string): string {
  const s = (salt ?? [...randomBytes(16)].map((b) => ITOA64[b & 0x3f]).join('')).slice(0, 16);
  if (!/^[./0-9A-Za-z]*$/.test(s)) throw new Error('a crypt salt is made of [./0-9A-Za-z]');
  const P = Buffer.from(password, 'utf8');
  const S = Buffer.from(s, 'ascii');
  const B = sha512(P, S, P);
  const a = createHash('sha512').update(P).update(S);
  let cnt = P.length;
  for (; cnt > 64; cnt -= 64) a.update(B);
  a.update(B.subarray(0, cnt));
  for (cnt = P.length; cnt > 0; cnt >>= 1) a.update(cnt & 1 ? B : P);
  let C = a.digest();
  const DP = sha512(...Array.from({ length: P.length }, () => P));
  const pSeq = stretch(DP, P.length);
  const DS = sha512(...Array.from({ length: 16 + (C[0] ?? 0) }, () => S));
  const sSeq = stretch(DS, S.length);
  for (let i = 0; i < 5000; i++) {
    const h = createHash('sha512');
    h.update(i & 1 ? pSeq : C);
    if (i % 3) h.update(sSeq);
    if (i % 7) h.update(pSeq);
    h.update(i & 1 ? C : pSeq);
    C = h.digest();
  }
  const at = (i: number) => C[i] ?? 0;
  let out = '';
  for (const [x, y, z] of ORDER) out += encode((at(x) << 16) | (at(y) << 8) | at(z), 4);
  out += encode(at(63), 2);
  return `$6$${s}$${out}`;
}
