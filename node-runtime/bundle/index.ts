// Configuration bundles: packed and signed by the config server, verified, decrypted, validated
// and unpacked by the node (this module runs in the node runtime's bundle on Node 18: node:crypto,
// tar-stream and yaml only). The wire format is described in envelope.ts, the tar in archive.ts,
// and both in README.md next to this file.

import { dataError } from '../../common/index.ts';
import type { NodeConfig } from '../config/index.ts';
import {
  type ArchiveContent,
  type BundleLimits,
  configYaml,
  normalizeOverlay,
  type OverlayEntry,
  type OverlayInput,
  packArchive,
  readArchive,
} from './archive.ts';
import { openEnvelope, sealEnvelope } from './envelope.ts';
import { publicKeyOf } from './keys.ts';

export {
  type BundleLimits,
  CONFIG_NAME as BUNDLE_CONFIG_NAME,
  DEFAULT_LIMITS as DEFAULT_BUNDLE_LIMITS,
  NODE_KEY_NAME as BUNDLE_NODE_KEY_NAME,
  type OverlayEntry,
  type OverlayInput,
} from './archive.ts';
export { MAGIC as BUNDLE_MAGIC } from './envelope.ts';
export {
  generateNodeKey,
  generateSigningKey,
  type KeyPairPem,
  keyFingerprint,
  trustedFingerprint,
} from './keys.ts';
export { unpackOverlay } from './unpack.ts';

export interface PackBundleOptions {
  /** A NodeConfig (validated before anything is packed). */
  config: unknown;
  overlay?: readonly OverlayInput[];
  /** The config server's Ed25519 private key (PEM). */
  signingKeyPem: string;
  /** The node's X25519 public key (PEM): the bundle is then readable by that node only. */
  encryptToPem?: string;
  /** The node's MAC (any notation): a node that checks it refuses bundles made for another. */
  mac?: string;
}

export interface OpenBundleOptions {
  /** Signers to accept: fingerprints (`sha256:<hex>`, the config_key= value) or base64 Ed25519 keys. */
  trust: readonly string[];
  /** The node's X25519 private key (PEM), for a bundle encrypted to it. */
  decryptKeyPem?: string;
  /** This node's MAC: refuse a bundle made for another node (or for none). */
  expectMac?: string;
  limits?: BundleLimits;
  /** Names the bundle in errors (default "bundle"). */
  where?: string;
}

export interface OpenedBundle {
  config: NodeConfig;
  overlay: OverlayEntry[];
  /** Fingerprint of the key that signed it. */
  signer: string;
  encrypted: boolean;
  /** The node it was made for, when it names one. */
  mac?: string;
  /** sha256:<hex> of the payload as sent. */
  digest: string;
}

export interface UploadArchive {
  config: NodeConfig;
  overlay: OverlayEntry[];
  /** The node's X25519 public key (PEM), when the node sent one (node-key.pub). */
  nodeKeyPem?: string;
}

/**
 * A signed (and, with encryptToPem, encrypted) bundle. The config and every overlay entry are
 * validated first, by the same rules openBundle applies, so that what is packed always opens.
 * Equal input gives equal bytes, except for the randomness of encryption.
 */
export async function packBundle(opts: PackBundleOptions): Promise<Buffer> {
  const where = 'pack bundle';
  const config = configYaml(opts.config, where);
  const overlay = normalizeOverlay(opts.overlay ?? [], where);
  const tar = await packArchive({ config, overlay });
  // the reader's rules (link targets, limits) are the packer's too
  await readArchive(tar, { upload: false, where });
  return sealEnvelope(tar, {
    signingKeyPem: opts.signingKeyPem,
    ...(opts.encryptToPem !== undefined ? { encryptToPem: opts.encryptToPem } : {}),
    ...(opts.mac !== undefined ? { mac: opts.mac } : {}),
  });
}

/**
 * Opens a bundle: the signature is checked first (before the payload is looked at), then the
 * payload decrypted, then every tar entry and the NodeConfig validated. Any failure is an HvError
 * (exit 65) that names the entry; nothing is returned unless everything holds.
 */
export async function openBundle(data: Buffer, opts: OpenBundleOptions): Promise<OpenedBundle> {
  const where = opts.where ?? 'bundle';
  const env = openEnvelope(data, {
    trust: opts.trust,
    where,
    ...(opts.decryptKeyPem !== undefined ? { decryptKeyPem: opts.decryptKeyPem } : {}),
    ...(opts.expectMac !== undefined ? { expectMac: opts.expectMac } : {}),
  });
  const content = await readArchive(env.payload, {
    upload: false,
    where,
    ...(opts.limits ? { limits: opts.limits } : {}),
  });
  const opened: OpenedBundle = {
    config: content.config,
    overlay: content.overlay,
    signer: env.signer,
    encrypted: env.encrypted,
    digest: env.digest,
  };
  if (env.mac !== undefined) opened.mac = env.mac;
  return opened;
}

/**
 * An unsigned upload (a node's captured /config, from `hvnode-node upload`): the same entry and
 * NodeConfig validation as a bundle, plus node-key.pub, the node's X25519 public key (PEM).
 */
export async function readUploadArchive(data: Buffer, limits?: BundleLimits): Promise<UploadArchive> {
  const content: ArchiveContent = await readArchive(data, {
    upload: true,
    where: 'upload',
    ...(limits ? { limits } : {}),
  });
  return content;
}

/** The tar `hvnode-node upload` sends: config, overlay and, optionally, the node's public key. */
export async function packUploadArchive(opts: {
  config: unknown;
  overlay?: readonly OverlayInput[];
  nodeKeyPem?: string;
}): Promise<Buffer> {
  const where = 'pack upload';
  const config = configYaml(opts.config, where);
  const overlay = normalizeOverlay(opts.overlay ?? [], where);
  let nodeKeyPem: string | undefined;
  if (opts.nodeKeyPem !== undefined) {
    if (/PRIVATE KEY/.test(opts.nodeKeyPem))
      throw dataError('the node key to upload is a private key', where, 'upload the public half only');
    nodeKeyPem = publicKeyOf(opts.nodeKeyPem, 'x25519', 'the node key')
      .export({ format: 'pem', type: 'spki' })
      .toString();
  }
  const tar = await packArchive({ config, overlay, ...(nodeKeyPem !== undefined ? { nodeKeyPem } : {}) });
  await readArchive(tar, { upload: true, where });
  return tar;
}
