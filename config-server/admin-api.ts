// What an admin can do to a config server, as one interface with two implementations: local
// (LocalAdminApi in admin-local.ts, over a Store: `hvnode-config-server admin --data DIR`, and
// the HTTP server's admin handlers) and remote (an HTTP client: `admin --url URL --token T`).
// The command table (admin.ts) reads files and parses arguments; every method here takes plain
// data, so both implementations receive the same thing and refuse the same things.
//
// Contract for both implementations:
// - MACs arrive in any common notation and are normalised (common/ normalizeMac); a malformed
//   one is an HvError with exit code 65 (HTTP 400) that names it.
// - Refusals (unknown image, image in use, upload already decided, ...) are HvError with exit
//   code 65 (HTTP 400/404/409); "not found" is HvError 65 too, message "... not found: ...".
// - Every call that changes something appends one audit entry (who, action, target, result),
//   also when it is refused (result 'error').

import type { NodeConfig } from '../node-runtime/index.ts';
import type {
  AuditEntry,
  BootProfile,
  BundleRecord,
  ImageRecord,
  NodeStatus,
  UploadRecord,
  UploadState,
} from './store/types.ts';

/** An image as `image list` shows it. */
export interface ImageView extends ImageRecord {
  default: boolean;
  /** What refers to it: `node 52:54:00:12:34:56`, `group rack1`, `default`. */
  usedBy: string[];
}

/**
 * A change to a boot profile: fields left undefined keep their current value; `image: null`
 * / `group: null` clear the field; `args` replaces the extra kernel arguments.
 */
export interface ProfileChange {
  image?: string | null;
  args?: string[];
  group?: string | null;
}

/** The boot a node gets: its own profile, else its group's, else the default image. */
export interface EffectiveBoot {
  /** undefined when the store has no default image (the node gets no boot config). */
  image?: string;
  args: string[];
  /** Where the image came from. */
  source: 'node' | 'group' | 'default';
  group?: string;
}

/** A node as `node list` / `node show` shows it (a MAC with a profile, a bundle or a status). */
export interface NodeView {
  mac: string;
  profile?: BootProfile;
  effective: EffectiveBoot;
  bundle?: BundleRecord;
  /** Its last reported status. */
  status?: NodeStatus;
}

export interface GroupView {
  name: string;
  profile: BootProfile;
  /** The MACs whose profile names the group. */
  members: string[];
}

/** An entry of the tree laid over the node's root (path relative to /, no `..`). */
export interface OverlayFile {
  path: string;
  /** Default 'file' ('symlink' when target is given). */
  type?: 'file' | 'dir' | 'symlink';
  /** The file's content (absent for a folder or a link). */
  data?: Buffer;
  /** Permission bits; default 0644 (file), 0755 (folder). */
  mode?: number;
  /** A symbolic link's target (relative, inside the overlay). */
  target?: string;
}

export interface BundleInput {
  /** The NodeConfig (parsed from YAML; validated by the implementation before anything is stored). */
  config: unknown;
  overlay?: OverlayFile[];
  /** Encrypt to this node key (X25519 public key, PEM). */
  encryptToPem?: string;
}

/** An upload with what it holds (validated as a bundle would be). */
export interface UploadView {
  record: UploadRecord;
  config: NodeConfig;
  overlay: Array<{
    path: string;
    type: 'file' | 'dir' | 'symlink';
    size: number;
    mode: number;
    target?: string;
  }>;
  /** The node sent its X25519 public key: `approve --encrypt` is possible. */
  nodeKey: boolean;
}

export interface KeyInfo {
  /** The `config_key=` value: sha256:<64 hex>. */
  fingerprint: string;
  publicKeyPem: string;
}

export interface AdminApi {
  /** Where it acts, for messages: "data directory /srv/hvnode" or "https://host:8443". */
  readonly description: string;

  images: {
    list(): Promise<ImageView[]>;
    /**
     * Runs iso-to-pxeboot on the ISO and adds the result; refuses a version already present.
     * Local: a path on this machine. Remote: the client uploads the file.
     */
    add(isoPath: string): Promise<ImageRecord>;
    /** Refuses an image that a node, a group or the default uses (the message names them). */
    rm(version: string): Promise<void>;
    setDefault(version: string): Promise<void>;
  };

  nodes: {
    /** Sets (merges) the MAC's own profile; the image and group must exist. Returns the new profile. */
    set(mac: string, change: ProfileChange): Promise<BootProfile>;
    /** Removes the MAC's own profile; false when it had none. */
    unset(mac: string): Promise<boolean>;
    list(): Promise<NodeView[]>;
    /** Any MAC, known or not (an unknown one shows the default boot). */
    show(mac: string): Promise<NodeView>;
  };

  groups: {
    /** Sets (merges) a group's profile; the image must exist. */
    set(name: string, change: Omit<ProfileChange, 'group'>): Promise<BootProfile>;
    list(): Promise<GroupView[]>;
  };

  bundles: {
    /** Validates, signs with the server key, optionally encrypts, and publishes for the MAC. */
    put(mac: string, input: BundleInput): Promise<BundleRecord>;
    /** The signed bundle bytes; "not found" error when the MAC has none. */
    get(mac: string): Promise<{ record: BundleRecord; data: Buffer }>;
    /** false when the MAC had none. */
    rm(mac: string): Promise<boolean>;
    list(): Promise<BundleRecord[]>;
  };

  uploads: {
    list(state?: UploadState): Promise<UploadRecord[]>;
    show(id: string): Promise<UploadView>;
    /**
     * Validates the upload, signs it (encrypted to the node key it carries with `encrypt`),
     * publishes it as mac's bundle and marks it approved: once (a second decision is refused).
     */
    approve(
      id: string,
      mac: string,
      opts?: { encrypt?: boolean },
    ): Promise<{ upload: UploadRecord; bundle: BundleRecord }>;
    reject(id: string, reason: string): Promise<UploadRecord>;
  };

  audit: {
    /** The newest `limit` entries (all when absent), oldest first. */
    list(limit?: number): Promise<AuditEntry[]>;
  };

  key: {
    /** The server's signing key's fingerprint (made at first use). */
    fingerprint(): Promise<string>;
    show(): Promise<KeyInfo>;
  };
}
