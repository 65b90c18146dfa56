// The signed envelope around a bundle's tar (format version 1). One byte stream, as served at
// GET /v1/bundles/:mac:
//
//   offset  length  field
//   0       16      magic "hvnode-bundle/1\n" (the format version is part of it)
//   16      44      signer: the Ed25519 public key, SubjectPublicKeyInfo DER
//   60      4       H: length of the header, unsigned 32-bit big-endian, 2..16384
//   64      H       header: UTF-8 JSON {"digest":"sha256:<hex>","size":N[,"mac":M][,"enc":{…}]}
//   64+H    64      Ed25519 signature over bytes 0 .. 64+H (magic, signer, H and header)
//   128+H   N       payload: the tar, or its AES-256-GCM ciphertext followed by the 16-byte tag
//
// The header holds the payload's sha256, so the signature covers every byte (encrypt-then-sign:
// a changed ciphertext is caught before anything is decrypted). Opening checks, in this order:
// magic, signer trusted (its fingerprint is in `trust`), signature, header, payload size and
// digest, then decrypts. Nothing of the payload is looked at before the signature holds.
//
// Encryption to a node ("enc": {"alg","to","epk","nonce"}): an ephemeral X25519 key pair (epk,
// its raw 32 bytes in base64) and the node's static X25519 key (`to`: its fingerprint) give a
// shared secret; HKDF-SHA256 (salt = epk || node key, raw; info = "hvnode-bundle/1 aes-256-gcm")
// makes a 256-bit AES-GCM key; the nonce is 12 random bytes; the additional data is bytes 0..60
// (magic and signer), which binds the ciphertext to the key that signed it.
//
// "mac" (optional, canonical form) names the node a bundle was made for, so that a bundle of one
// node cannot be handed to another: the node passes its own MAC as `expectMac`.

import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  randomBytes,
  sign,
  verify,
} from 'node:crypto';
import { dataError, HvError, normalizeMac } from '../../common/index.ts';
import {
  ED25519_SPKI_LENGTH,
  ED25519_SPKI_PREFIX,
  fingerprintOfDer,
  privateKeyOf,
  publicKeyOf,
  rawPublicKey,
  spkiDer,
  trustedFingerprint,
} from './keys.ts';

export const MAGIC = Buffer.from('hvnode-bundle/1\n', 'latin1');
const MAGIC_FAMILY = Buffer.from('hvnode-bundle/', 'latin1');
const KEY_AT = MAGIC.length; // 16
const LEN_AT = KEY_AT + ED25519_SPKI_LENGTH; // 60
const HEADER_AT = LEN_AT + 4; // 64
const SIG_LENGTH = 64;
const MAX_HEADER = 16384;
const ENC_ALG = 'x25519-hkdf-sha256-aes-256-gcm';
const HKDF_INFO = Buffer.from('hvnode-bundle/1 aes-256-gcm', 'latin1');
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const TAG_LENGTH = 16;

interface EncHeader {
  alg: typeof ENC_ALG;
  /** fingerprint of the node's X25519 public key */
  to: string;
  /** the sender's ephemeral X25519 public key, 32 raw bytes in base64 */
  epk: string;
  /** 12 bytes in base64 */
  nonce: string;
}

interface EnvelopeHeader {
  digest: string;
  size: number;
  mac?: string;
  enc?: EncHeader;
}

export interface SealOptions {
  signingKeyPem: string;
  /** The node's X25519 public key (PEM): encrypt the payload to it. */
  encryptToPem?: string;
  /** The node the bundle is for (any notation; stored canonical). */
  mac?: string;
}

export interface OpenEnvelopeOptions {
  /** Fingerprints (sha256:<hex>) or base64 Ed25519 keys of the signers to accept. */
  trust: readonly string[];
  /** The node's X25519 private key (PEM), to open a bundle encrypted to it. */
  decryptKeyPem?: string;
  /** Refuse a bundle made for another node (or for no node in particular). */
  expectMac?: string;
  /** Names the bundle in errors (default "bundle"). */
  where?: string;
}

export interface OpenedEnvelope {
  payload: Buffer;
  /** Fingerprint of the key that signed it. */
  signer: string;
  encrypted: boolean;
  mac?: string;
  /** sha256:<hex> of the payload as sent (the ciphertext when encrypted). */
  digest: string;
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** X25519 → HKDF-SHA256 → the AES-256-GCM key. */
function contentKey(shared: Buffer, epk: Buffer, nodeKey: Buffer): Buffer {
  // a low-order peer key gives an all-zero secret: never a key
  if (shared.every((b) => b === 0)) throw dataError('the ephemeral key of the bundle is invalid', 'bundle');
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([epk, nodeKey]), HKDF_INFO, 32));
}

/** Wraps `payload` in a signed (and, with encryptToPem, encrypted) envelope. */
export function sealEnvelope(payload: Buffer, opts: SealOptions): Buffer {
  const signingKey = privateKeyOf(opts.signingKeyPem, 'ed25519', 'the signing key');
  const signerDer = spkiDer(publicKeyOf(opts.signingKeyPem, 'ed25519', 'the signing key'));
  const prefix = Buffer.concat([MAGIC, signerDer]);
  let body = payload;
  let enc: EncHeader | undefined;
  if (opts.encryptToPem !== undefined) {
    const node = publicKeyOf(opts.encryptToPem, 'x25519', 'the node key to encrypt to');
    const eph = generateKeyPairSync('x25519');
    const epk = rawPublicKey(eph.publicKey);
    const key = contentKey(
      diffieHellman({ privateKey: eph.privateKey, publicKey: node }),
      epk,
      rawPublicKey(node),
    );
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(prefix);
    body = Buffer.concat([cipher.update(payload), cipher.final(), cipher.getAuthTag()]);
    enc = {
      alg: ENC_ALG,
      to: fingerprintOfDer(spkiDer(node)),
      epk: epk.toString('base64'),
      nonce: nonce.toString('base64'),
    };
  }
  const header: EnvelopeHeader = { digest: sha256(body), size: body.length };
  if (opts.mac !== undefined) header.mac = normalizeMac(opts.mac, 'bundle');
  if (enc) header.enc = enc;
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(headerBytes.length);
  const signed = Buffer.concat([prefix, len, headerBytes]);
  return Buffer.concat([signed, sign(null, signed, signingKey), body]);
}

function refuse(where: string, what: string, hint?: string): HvError {
  return dataError(what, where, hint);
}

function describeStart(data: Buffer): string {
  if (data[0] === 0x1f && data[1] === 0x8b) return 'gzip data';
  if (data.length >= 262 && data.subarray(257, 262).toString('latin1') === 'ustar')
    return 'a plain tar archive';
  return 'not a bundle';
}

/** The header, checked field by field (it is authenticated by now, but still strict). */
function parseHeader(bytes: Buffer, where: string): EnvelopeHeader {
  const bad = (why: string) => refuse(where, `the bundle header ${why}`);
  let h: unknown;
  try {
    h = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw bad('is not JSON');
  }
  if (typeof h !== 'object' || h === null || Array.isArray(h)) throw bad('is not a JSON object');
  const o = h as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!['digest', 'size', 'mac', 'enc'].includes(k)) throw bad(`has an unknown field ${JSON.stringify(k)}`);
  if (typeof o.digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(o.digest))
    throw bad('has no valid digest');
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0)
    throw bad('has no valid size');
  if (o.mac !== undefined && (typeof o.mac !== 'string' || !/^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/.test(o.mac)))
    throw bad('has an invalid mac');
  if (o.enc !== undefined) {
    const e = o.enc as Record<string, unknown>;
    if (typeof e !== 'object' || e === null) throw bad('has an invalid enc');
    for (const k of Object.keys(e))
      if (!['alg', 'to', 'epk', 'nonce'].includes(k))
        throw bad(`has an unknown field enc.${JSON.stringify(k)}`);
    if (e.alg !== ENC_ALG) throw bad(`names an unknown cipher ${JSON.stringify(e.alg)} (known: ${ENC_ALG})`);
    if (typeof e.to !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(e.to)) throw bad('has an invalid enc.to');
    for (const [k, n] of [
      ['epk', 32],
      ['nonce', 12],
    ] as const) {
      const v = e[k];
      if (
        typeof v !== 'string' ||
        Buffer.from(v, 'base64').length !== n ||
        Buffer.from(v, 'base64').toString('base64') !== v
      )
        throw bad(`has an invalid enc.${k}`);
    }
  }
  return o as unknown as EnvelopeHeader;
}

/** Checks and opens an envelope: see the format at the top of this file for the order. */
export function openEnvelope(data: Buffer, opts: OpenEnvelopeOptions): OpenedEnvelope {
  const where = opts.where ?? 'bundle';
  const trust = new Set(opts.trust.map(trustedFingerprint));
  if (trust.size === 0)
    throw refuse(where, 'no trusted signing key given', 'the node trusts the key named by config_key=');

  if (data.length < HEADER_AT || !data.subarray(0, MAGIC.length).equals(MAGIC)) {
    if (data.subarray(0, MAGIC_FAMILY.length).equals(MAGIC_FAMILY))
      throw refuse(
        where,
        `bundle format ${JSON.stringify(data.subarray(MAGIC_FAMILY.length, MAGIC.length).toString('latin1').trim())} is not supported (this node reads format 1)`,
        'upgrade the node image, or re-sign the bundle with a matching config server',
      );
    throw refuse(
      where,
      `is ${describeStart(data)}: it does not start with the signed-bundle magic "hvnode-bundle/1"`,
    );
  }

  const signerDer = data.subarray(KEY_AT, LEN_AT);
  if (!signerDer.subarray(0, ED25519_SPKI_PREFIX.length).equals(ED25519_SPKI_PREFIX))
    throw refuse(where, 'the signer key is not an Ed25519 key');
  const signer = fingerprintOfDer(signerDer);
  if (!trust.has(signer))
    throw refuse(
      where,
      `is signed by key ${signer}, which is not trusted (trusted: ${[...trust].join(', ')})`,
      'config_key= must name the fingerprint of the config server that signed the bundle',
    );

  const headerLength = data.readUInt32BE(LEN_AT);
  if (headerLength < 2 || headerLength > MAX_HEADER)
    throw refuse(
      where,
      `the header length ${headerLength} is out of range (2..${MAX_HEADER}): corrupted or truncated`,
    );
  const sigAt = HEADER_AT + headerLength;
  if (data.length < sigAt + SIG_LENGTH) throw refuse(where, 'is truncated (it ends before its signature)');
  const signed = data.subarray(0, sigAt);
  const signerKey = createPublicKey({ key: signerDer, format: 'der', type: 'spki' });
  if (!verify(null, signed, signerKey, data.subarray(sigAt, sigAt + SIG_LENGTH)))
    throw refuse(
      where,
      `the signature does not verify with key ${signer}: the bundle was changed or corrupted`,
    );

  const header = parseHeader(data.subarray(HEADER_AT, sigAt), where);
  const payload = data.subarray(sigAt + SIG_LENGTH);
  if (payload.length !== header.size)
    throw refuse(
      where,
      `the payload is ${payload.length} bytes, the signed header says ${header.size}: ${payload.length < header.size ? 'truncated' : 'trailing data'}`,
    );
  const digest = sha256(payload);
  if (digest !== header.digest)
    throw refuse(
      where,
      `the payload digest ${digest} is not the signed ${header.digest}: the bundle was changed`,
    );

  if (opts.expectMac !== undefined) {
    const mine = normalizeMac(opts.expectMac, where);
    if (header.mac !== mine)
      throw refuse(
        where,
        header.mac === undefined
          ? `is not bound to a node, and this node (${mine}) accepts only its own`
          : `was made for node ${header.mac}, not for this node (${mine})`,
      );
  }

  const result: OpenedEnvelope = { payload, signer, encrypted: header.enc !== undefined, digest };
  if (header.mac !== undefined) result.mac = header.mac;
  if (header.enc) result.payload = decrypt(header.enc, payload, data.subarray(0, LEN_AT), opts, where);
  return result;
}

function decrypt(
  enc: EncHeader,
  body: Buffer,
  aad: Buffer,
  opts: OpenEnvelopeOptions,
  where: string,
): Buffer {
  if (opts.decryptKeyPem === undefined)
    throw refuse(where, `is encrypted to node key ${enc.to}, and no node key was given to decrypt it`);
  const mine: KeyObject = privateKeyOf(opts.decryptKeyPem, 'x25519', 'the node key');
  const minePublic = publicKeyOf(opts.decryptKeyPem, 'x25519', 'the node key');
  const mineFp = fingerprintOfDer(spkiDer(minePublic));
  if (mineFp !== enc.to)
    throw refuse(
      where,
      `is encrypted to node key ${enc.to}, not to this node's key ${mineFp}`,
      "approve the node's latest upload again (it carries the node's current key)",
    );
  if (body.length < TAG_LENGTH) throw refuse(where, 'the ciphertext is shorter than its tag');
  const epk = Buffer.from(enc.epk, 'base64');
  const eph = createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, epk]), format: 'der', type: 'spki' });
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: mine, publicKey: eph });
  } catch {
    throw refuse(where, 'the ephemeral key of the bundle is invalid');
  }
  const key = contentKey(shared, epk, rawPublicKey(minePublic));
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(enc.nonce, 'base64'));
  decipher.setAAD(aad);
  decipher.setAuthTag(body.subarray(body.length - TAG_LENGTH));
  try {
    return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_LENGTH)), decipher.final()]);
  } catch {
    throw refuse(where, 'does not decrypt with this node key (authentication failed)');
  }
}
