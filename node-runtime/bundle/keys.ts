// Keys of the bundle format: the config server's Ed25519 signing key, a node's X25519 key (for
// bundles encrypted to that node), and the fingerprints that name them on a kernel command line.

import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { dataError } from '../../common/index.ts';

export interface KeyPairPem {
  privateKeyPem: string;
  publicKeyPem: string;
}

/** DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the 32 raw key bytes follow. */
export const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
export const ED25519_SPKI_LENGTH = ED25519_SPKI_PREFIX.length + 32;

function pair(type: 'ed25519' | 'x25519'): KeyPairPem {
  const { privateKey, publicKey } = generateKeyPairSync(type as 'ed25519');
  return {
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  };
}

/** A new Ed25519 key pair (PEM: PKCS#8 private, SPKI public) to sign bundles with. */
export function generateSigningKey(): KeyPairPem {
  return pair('ed25519');
}

/** A new X25519 key pair (PEM) of a node: bundles can be encrypted to its public half. */
export function generateNodeKey(): KeyPairPem {
  return pair('x25519');
}

/**
 * A public key of `type`, from a PEM (a private key's PEM gives its public half). `what` names
 * the key in the error.
 */
export function publicKeyOf(pem: string, type: 'ed25519' | 'x25519', what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw dataError(`${what} is not a PEM public or private key`, undefined, String(err));
  }
  if (key.asymmetricKeyType !== type)
    throw dataError(
      `${what} is a ${key.asymmetricKeyType} key, not ${type}`,
      undefined,
      type === 'ed25519'
        ? 'bundles are signed with an Ed25519 key (generateSigningKey)'
        : 'bundles are encrypted to a node X25519 key (generateNodeKey)',
    );
  return key;
}

/** A private key of `type`, from a PEM. */
export function privateKeyOf(pem: string, type: 'ed25519' | 'x25519', what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw dataError(`${what} is not a PEM private key`, undefined, String(err));
  }
  if (key.asymmetricKeyType !== type)
    throw dataError(`${what} is a ${key.asymmetricKeyType} key, not ${type}`);
  return key;
}

export function spkiDer(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' });
}

/** The 32 raw bytes of an Ed25519 or X25519 public key. */
export function rawPublicKey(key: KeyObject): Buffer {
  return spkiDer(key).subarray(-32);
}

/** `sha256:` + the hex sha256 of a key's SubjectPublicKeyInfo DER. */
export function fingerprintOfDer(der: Buffer): string {
  return `sha256:${createHash('sha256').update(der).digest('hex')}`;
}

/**
 * The fingerprint of a public key (or of a private key's public half): `sha256:` + 64 lower-case
 * hex digits of the sha256 of its SubjectPublicKeyInfo DER. 71 characters, no character a kernel
 * command line would split or quote: the `config_key=` value.
 */
export function keyFingerprint(publicKeyPem: string): string {
  let key: KeyObject;
  try {
    key = createPublicKey(publicKeyPem);
  } catch (err) {
    throw dataError('not a PEM public or private key', 'key fingerprint', String(err));
  }
  return fingerprintOfDer(spkiDer(key));
}

const FINGERPRINT = /^sha256:[0-9a-f]{64}$/;
const RAW_KEY_B64 = /^[A-Za-z0-9+/]{43}=$/;

/**
 * A trusted signer as written in the node's configuration (`config_key=`): a fingerprint
 * (`sha256:<64 hex>`, any case), or the Ed25519 public key itself in base64 (32 raw bytes, as
 * NodeConfig's `configServer.key` also admits). Returned as a fingerprint.
 */
export function trustedFingerprint(entry: string): string {
  const t = entry.trim();
  if (FINGERPRINT.test(t.toLowerCase())) return t.toLowerCase();
  if (RAW_KEY_B64.test(t)) {
    const raw = Buffer.from(t, 'base64');
    if (raw.length === 32) return fingerprintOfDer(Buffer.concat([ED25519_SPKI_PREFIX, raw]));
  }
  throw dataError(
    `trusted key ${JSON.stringify(entry)} is neither a fingerprint nor a base64 Ed25519 key`,
    'bundle',
    'give the config server key fingerprint as sha256:<64 hex digits> (hvnode-config-server prints it)',
  );
}
