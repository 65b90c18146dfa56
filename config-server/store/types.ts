// The config server's state, behind one small interface: images, boot profiles, bundles, uploads,
// node status and the audit log. Handlers (HTTP, TFTP, admin CLI) use only this interface; the data
// directory implementation (dir-store.ts) is the embedded default, and a database-backed store for
// several stateless replicas behind a load balancer implements the same interface.
//
// MACs are always in canonical form here: lower case, colon-separated (normalizeMac in common/).

/** A live image added with `admin image add ISO` (the iso-to-pxeboot trees, kept per version). */
export interface ImageRecord {
  /** The ISO's version (from its isolinux/version or the file name), unique in the store. */
  version: string;
  /** The ISO's file name as added (for messages and `root=live:/<name>`). */
  isoName: string;
  /** ISO volume label (root=live:CDLABEL=...). */
  label: string;
  /** sha256 of the ISO as added. */
  sha256: string;
  /** The kernel arguments of the ISO's default boot entry. */
  kernelArgs: string;
  addedAt: string;
}

/** Which image a node boots and what it adds to the kernel command line. */
export interface BootProfile {
  /** Image version; absent: the store's default image. */
  image?: string;
  /** Extra kernel arguments, appended after the image's own. */
  args: string[];
  /** Group the MAC belongs to (a MAC's own fields win over its group's). */
  group?: string;
}

/** A node's report, posted to /v1/nodes/:mac/status. */
export interface NodeStatus {
  mac: string;
  /** e.g. fetch, verify, apply, register, ready */
  step: string;
  state: 'progress' | 'ok' | 'waiting' | 'error';
  message: string;
  /** the source address the report came from */
  address: string;
  at: string;
}

export interface BundleRecord {
  mac: string;
  /** strong ETag of the signed bundle bytes: "sha256-<hex>" */
  etag: string;
  size: number;
  encrypted: boolean;
  updatedAt: string;
  /** the upload it was approved from, if any */
  fromUpload?: string;
}

export type UploadState = 'pending' | 'approved' | 'rejected';

export interface UploadRecord {
  /** opaque, URL-safe, unique */
  id: string;
  /** the MAC the node said it has (not trusted: the admin approves it for a MAC) */
  mac: string;
  address: string;
  size: number;
  sha256: string;
  receivedAt: string;
  state: UploadState;
  /** why it was rejected, or the MAC it was approved for */
  note?: string;
}

export interface AuditEntry {
  at: string;
  /** 'token', 'cert:<subject CN>', 'cli' */
  who: string;
  action: string;
  target?: string;
  result: 'ok' | 'error';
  detail?: string;
}

/** The server's signing (Ed25519) key pair, PEM; made at first start. */
export interface ServerKeys {
  privateKeyPem: string;
  publicKeyPem: string;
}

export interface Store {
  /** Where the store lives, for messages ("data directory /srv/hvnode"). */
  readonly description: string;

  images: {
    list(): Promise<ImageRecord[]>;
    get(version: string): Promise<ImageRecord | undefined>;
    /**
     * Adds an image from a directory that iso-to-pxeboot wrote (tftpboot/ and http/ trees);
     * the directory is moved (or copied) into the store. Refuses a version already present.
     */
    add(record: ImageRecord, pxebootDir: string): Promise<void>;
    /** Refuses (HvError, data error) an image that a boot profile or the default uses. */
    remove(version: string): Promise<void>;
    getDefault(): Promise<string | undefined>;
    setDefault(version: string): Promise<void>;
    /** Absolute path of a file of an image's tftpboot/ or http/ tree, for serving; undefined if absent. */
    filePath(version: string, tree: 'tftpboot' | 'http', relPath: string): Promise<string | undefined>;
  };

  profiles: {
    /** The profile set for a MAC itself (not its group, not the default). */
    get(mac: string): Promise<BootProfile | undefined>;
    set(mac: string, profile: BootProfile): Promise<void>;
    remove(mac: string): Promise<boolean>;
    list(): Promise<Array<{ mac: string; profile: BootProfile }>>;
    getGroup(name: string): Promise<BootProfile | undefined>;
    setGroup(name: string, profile: Omit<BootProfile, 'group'>): Promise<void>;
    listGroups(): Promise<Array<{ name: string; profile: BootProfile }>>;
  };

  bundles: {
    get(mac: string): Promise<{ record: BundleRecord; data: Buffer } | undefined>;
    head(mac: string): Promise<BundleRecord | undefined>;
    /** Stores signed bundle bytes for a MAC, replacing atomically. */
    put(mac: string, data: Buffer, meta: { encrypted: boolean; fromUpload?: string }): Promise<BundleRecord>;
    remove(mac: string): Promise<boolean>;
    list(): Promise<BundleRecord[]>;
  };

  uploads: {
    /** Stores an upload as pending. */
    add(
      meta: Omit<UploadRecord, 'id' | 'state' | 'sha256' | 'size' | 'receivedAt'>,
      data: Buffer,
    ): Promise<UploadRecord>;
    get(id: string): Promise<{ record: UploadRecord; data: Buffer } | undefined>;
    list(state?: UploadState): Promise<UploadRecord[]>;
    /** Changes the state once: pending → approved|rejected; a second decision is refused. */
    decide(id: string, state: 'approved' | 'rejected', note?: string): Promise<UploadRecord>;
  };

  nodes: {
    report(status: NodeStatus): Promise<void>;
    /** Latest status per MAC. */
    list(): Promise<NodeStatus[]>;
    get(mac: string): Promise<NodeStatus | undefined>;
  };

  audit: {
    append(entry: AuditEntry): Promise<void>;
    list(limit?: number): Promise<AuditEntry[]>;
  };

  keys: {
    /** The server's signing key, made at first use. */
    signing(): Promise<ServerKeys>;
    /** The admin bearer token, made at first use (stored 0600). */
    adminToken(): Promise<string>;
    /** The HTTPS certificate and key (PEM), made at first use unless given. */
    tls(hostnames: string[]): Promise<{ certPem: string; keyPem: string }>;
  };
}
