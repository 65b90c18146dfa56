// The Store on a data directory. Several server processes may serve one directory:
// - one record per file, every write atomic (temp + fsync + rename), so a reader sees a whole
//   record, old or new, never a part (a bundle's record and bytes share one file for that reason);
// - an exclusive lock (flock(2) on DIR/.lock, as node-runtime's /config store takes it) around
//   every read-modify-write that spans records or must happen once: upload decisions, image
//   add/remove, the default image, profiles that name an image or a group;
// - keys created once (link(2): two processes starting together end up with the same key);
// - the audit log as JSON lines, each appended with one write on an O_APPEND descriptor.
// Secrets (signing key, admin token, TLS key) are mode 0600; the directory is 0700.
//
// DIR/
//   .lock  .tmp/                   lock file; work area on the same file system (renames)
//   keys/signing.pem               Ed25519 private key (PKCS#8 PEM), 0600
//   keys/admin-token  keys/tls.pem 0600 (tls.pem: key then certificate)
//   images/<version>/image.json    + tftpboot/ http/ (iso-to-pxeboot's trees)
//   default-image                  the default image's version
//   profiles/nodes/<mac>.json  profiles/groups/<name>.json
//   bundles/<mac>.bundle           one JSON line (BundleRecord), then the signed bundle bytes
//   uploads/<id>.data  uploads/<id>.json
//   status/<mac>.json              a node's latest status
//   audit.log                      JSON lines

import { createHash, createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, realpathSync, rmSync, statSync } from 'node:fs';
import { open, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import { isAbsolute, join, normalize, sep } from 'node:path';
import { dataError, ExitCode, HvError, normalizeMac, run } from '../../common/index.ts';
import { generateSigningKey, withLock } from '../../node-runtime/index.ts';
import { appendLine, listNames, readJson, readOrNone, removeFile, writeAtomic, writeOnce } from './files.ts';
import type {
  AuditEntry,
  BootProfile,
  BundleRecord,
  ImageRecord,
  NodeStatus,
  ServerKeys,
  Store,
  UploadRecord,
  UploadState,
} from './types.ts';
import { imageUsers } from './usage.ts';

const SECRET = 0o600;
/** Lock waits longer than this are reported (a hung holder), not waited out. */
const LOCK_TIMEOUT_S = 60;

export const IMAGE_VERSION = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
export const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const UPLOAD_ID = /^[A-Za-z0-9_-]{8,64}$/;

export function checkImageVersion(v: string, where: string): string {
  if (!IMAGE_VERSION.test(v))
    throw dataError(
      `not an image version: ${JSON.stringify(v)}`,
      where,
      'versions are letters, digits and . _ + - (at most 64), e.g. 0.1.0',
    );
  return v;
}

export function checkGroupName(g: string, where: string): string {
  if (!GROUP_NAME.test(g))
    throw dataError(
      `not a group name: ${JSON.stringify(g)}`,
      where,
      'group names are letters, digits and . _ - (at most 64), e.g. rack1',
    );
  return g;
}

function macFile(mac: string, where: string): string {
  return normalizeMac(mac, where).replace(/:/g, '-');
}

function fileMac(name: string): string {
  return name.replace(/\.[a-z]+$/, '').replace(/-/g, ':');
}

function notFound(what: string, where: string, hint?: string): HvError {
  return dataError(`${what} not found`, where, hint);
}

export interface DirStoreOptions {
  /** Create the directory (0700) when missing (serve and admin do; false: it must exist). */
  create?: boolean;
}

/** Opens (and with `create`, makes) the data directory store at dir. */
export function openDirStore(dir: string, o: DirStoreOptions = {}): DirStore {
  const where = `data directory ${dir}`;
  let st: ReturnType<typeof statSync> | undefined;
  try {
    st = statSync(dir);
  } catch {
    st = undefined;
  }
  if (st && !st.isDirectory()) throw dataError(`${dir} exists and is not a directory`, where);
  if (!st) {
    if (!o.create)
      throw dataError(`${dir}: no such directory`, where, 'give the data directory of a config server');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  const root = realpathSync(dir);
  chmodSync(root, 0o700);
  for (const sub of [
    '.tmp',
    'keys',
    'images',
    'profiles/nodes',
    'profiles/groups',
    'bundles',
    'uploads',
    'status',
  ])
    mkdirSync(join(root, sub), { recursive: true, mode: 0o700 });
  return new DirStore(root);
}

export class DirStore implements Store {
  readonly description: string;

  constructor(readonly root: string) {
    this.description = `data directory ${root}`;
  }

  private p(...parts: string[]): string {
    return join(this.root, ...parts);
  }

  /** Runs fn holding the data directory's lock (one at a time across every process). */
  locked<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(this.p('.lock'), { timeoutSeconds: LOCK_TIMEOUT_S, what: this.description }, fn);
  }

  /** A fresh folder under DIR/.tmp (same file system as the store: renames work). */
  tempDir(prefix: string): string {
    return mkdtempSync(this.p('.tmp', `${prefix}-`));
  }

  // ---- images

  private async requireImage(version: string, where: string): Promise<void> {
    checkImageVersion(version, where);
    if (!(await this.images.get(version)))
      throw notFound(`image ${version}`, where, 'see "hvnode-config-server admin image list"');
  }

  private async requireGroup(name: string, where: string): Promise<void> {
    checkGroupName(name, where);
    if (!(await this.profiles.getGroup(name)))
      throw notFound(
        `group ${name}`,
        where,
        'create it first: "hvnode-config-server admin group set NAME ..."',
      );
  }

  images: Store['images'] = {
    list: async () => {
      const out: ImageRecord[] = [];
      for (const v of await listNames(this.p('images'))) {
        const r = await readJson<ImageRecord>(this.p('images', v, 'image.json'));
        if (r) out.push(r);
      }
      return out;
    },
    get: async (version) => {
      if (!IMAGE_VERSION.test(version)) return undefined;
      return readJson<ImageRecord>(this.p('images', version, 'image.json'));
    },
    add: (record, pxebootDir) => {
      const where = 'image add';
      checkImageVersion(record.version, where);
      return this.locked(async () => {
        const dest = this.p('images', record.version);
        if (await this.images.get(record.version))
          throw dataError(
            `image ${record.version} is in the store already`,
            where,
            `remove it first ("image rm ${record.version}") or add an ISO of another version`,
          );
        // staged under .tmp, completed with its record, then renamed into place: all or nothing
        const stage = this.tempDir(`image-${record.version}`);
        try {
          for (const tree of ['tftpboot', 'http']) {
            const src = join(pxebootDir, tree);
            try {
              await rename(src, join(stage, tree));
            } catch (err) {
              if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
              cpSync(src, join(stage, tree), { recursive: true });
            }
          }
          await writeAtomic(join(stage, 'image.json'), `${JSON.stringify(record, null, 2)}\n`);
          await rm(dest, { recursive: true, force: true }); // a leftover without image.json
          await rename(stage, dest);
        } finally {
          rmSync(stage, { recursive: true, force: true });
        }
      });
    },
    remove: (version) => {
      const where = 'image rm';
      return this.locked(async () => {
        await this.requireImage(version, where);
        const users = await imageUsers(this, version);
        if (users.length > 0)
          throw dataError(
            `image ${version} is in use: ${users.join(', ')}`,
            where,
            'point them at another image first (node set / group set --image, image default)',
          );
        // renamed away first: a reader sees the whole image or none
        const gone = this.p('.tmp', `removed-${version}-${randomBytes(4).toString('hex')}`);
        await rename(this.p('images', version), gone);
        await rm(gone, { recursive: true, force: true });
      });
    },
    getDefault: async () => {
      const v = (await readOrNone(this.p('default-image')))?.toString('utf8').trim();
      return v ? v : undefined;
    },
    setDefault: (version) =>
      this.locked(async () => {
        await this.requireImage(version, 'image default');
        await writeAtomic(this.p('default-image'), `${version}\n`);
      }),
    filePath: async (version, tree, relPath) => {
      if (!IMAGE_VERSION.test(version) || (tree !== 'tftpboot' && tree !== 'http')) return undefined;
      if (relPath === '' || isAbsolute(relPath) || relPath.includes('\\') || relPath.includes('\0'))
        return undefined;
      const rel = normalize(relPath);
      if (rel === '..' || rel.startsWith(`..${sep}`)) return undefined;
      const base = this.p('images', version, tree);
      try {
        const [realBase, real] = await Promise.all([realpath(base), realpath(join(base, rel))]);
        if (!real.startsWith(`${realBase}${sep}`)) return undefined;
        return (await stat(real)).isFile() ? real : undefined;
      } catch {
        return undefined;
      }
    },
  };

  // ---- profiles

  profiles: Store['profiles'] = {
    get: (mac) => readJson<BootProfile>(this.p('profiles', 'nodes', `${macFile(mac, 'profile')}.json`)),
    set: (mac, profile) => {
      const where = `node ${mac}`;
      const file = this.p('profiles', 'nodes', `${macFile(mac, where)}.json`);
      const clean = cleanProfile(profile, where);
      return this.locked(async () => {
        if (clean.image !== undefined) await this.requireImage(clean.image, where);
        if (clean.group !== undefined) await this.requireGroup(clean.group, where);
        await writeAtomic(file, `${JSON.stringify(clean)}\n`);
      });
    },
    remove: (mac) =>
      this.locked(() => removeFile(this.p('profiles', 'nodes', `${macFile(mac, `node ${mac}`)}.json`))),
    list: async () => {
      const out: Array<{ mac: string; profile: BootProfile }> = [];
      for (const name of await listNames(this.p('profiles', 'nodes'))) {
        const profile = await readJson<BootProfile>(this.p('profiles', 'nodes', name));
        if (profile) out.push({ mac: fileMac(name), profile });
      }
      return out;
    },
    getGroup: async (name) => {
      if (!GROUP_NAME.test(name)) return undefined;
      return readJson<BootProfile>(this.p('profiles', 'groups', `${name}.json`));
    },
    setGroup: (name, profile) => {
      const where = `group ${name}`;
      checkGroupName(name, where);
      const clean = cleanProfile({ ...profile, group: undefined }, where);
      return this.locked(async () => {
        if (clean.image !== undefined) await this.requireImage(clean.image, where);
        await writeAtomic(this.p('profiles', 'groups', `${name}.json`), `${JSON.stringify(clean)}\n`);
      });
    },
    listGroups: async () => {
      const out: Array<{ name: string; profile: BootProfile }> = [];
      for (const file of await listNames(this.p('profiles', 'groups'))) {
        const profile = await readJson<BootProfile>(this.p('profiles', 'groups', file));
        if (profile) out.push({ name: file.replace(/\.json$/, ''), profile });
      }
      return out;
    },
  };

  // ---- bundles: bundles/<mac>.bundle = JSON record line + bytes, replaced in one rename

  private bundleFile(mac: string): string {
    return this.p('bundles', `${macFile(mac, 'bundle')}.bundle`);
  }

  private static splitBundle(file: Buffer): { record: BundleRecord; data: Buffer } {
    const nl = file.indexOf(0x0a);
    const record = JSON.parse(file.subarray(0, nl).toString('utf8')) as BundleRecord;
    return { record, data: file.subarray(nl + 1) };
  }

  private async bundleHead(file: string): Promise<BundleRecord | undefined> {
    let fh: Awaited<ReturnType<typeof open>>;
    try {
      fh = await open(file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const buf = Buffer.alloc(4096);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      const nl = buf.subarray(0, bytesRead).indexOf(0x0a);
      if (nl < 0) throw new Error(`${file}: no record line`);
      return JSON.parse(buf.subarray(0, nl).toString('utf8')) as BundleRecord;
    } finally {
      await fh.close();
    }
  }

  bundles: Store['bundles'] = {
    get: async (mac) => {
      const file = await readOrNone(this.bundleFile(mac));
      return file === undefined ? undefined : DirStore.splitBundle(file);
    },
    head: (mac) => this.bundleHead(this.bundleFile(mac)),
    put: async (mac, data, meta) => {
      const canon = normalizeMac(mac, 'bundle');
      const record: BundleRecord = {
        mac: canon,
        etag: `sha256-${createHash('sha256').update(data).digest('hex')}`,
        size: data.length,
        encrypted: meta.encrypted,
        updatedAt: new Date().toISOString(),
        ...(meta.fromUpload ? { fromUpload: meta.fromUpload } : {}),
      };
      await writeAtomic(
        this.bundleFile(canon),
        Buffer.concat([Buffer.from(`${JSON.stringify(record)}\n`), data]),
        SECRET,
      );
      return record;
    },
    remove: (mac) => removeFile(this.bundleFile(mac)),
    list: async () => {
      const out: BundleRecord[] = [];
      for (const name of await listNames(this.p('bundles'))) {
        if (!name.endsWith('.bundle')) continue;
        const r = await this.bundleHead(this.p('bundles', name));
        if (r) out.push(r);
      }
      return out;
    },
  };

  // ---- uploads: the bytes first, then the record (the record is what makes an upload exist)

  uploads: Store['uploads'] = {
    add: async (meta, data) => {
      // hex: an id an admin passes on the command line must not start with '-' (base64url's
      // could, and `upload show -w6aC…` was then read as an option)
      const id = randomBytes(12).toString('hex');
      const record: UploadRecord = {
        id,
        mac: meta.mac,
        address: meta.address,
        size: data.length,
        sha256: createHash('sha256').update(data).digest('hex'),
        receivedAt: new Date().toISOString(),
        state: 'pending',
        ...(meta.note ? { note: meta.note } : {}),
      };
      await writeAtomic(this.p('uploads', `${id}.data`), data, SECRET);
      await writeAtomic(this.p('uploads', `${id}.json`), `${JSON.stringify(record)}\n`, SECRET);
      return record;
    },
    get: async (id) => {
      if (!UPLOAD_ID.test(id)) return undefined;
      const record = await readJson<UploadRecord>(this.p('uploads', `${id}.json`));
      if (!record) return undefined;
      const data = await readFile(this.p('uploads', `${id}.data`));
      return { record, data };
    },
    list: async (state?: UploadState) => {
      const out: UploadRecord[] = [];
      for (const name of await listNames(this.p('uploads'))) {
        if (!name.endsWith('.json')) continue;
        const r = await readJson<UploadRecord>(this.p('uploads', name));
        if (r && (state === undefined || r.state === state)) out.push(r);
      }
      return out.sort((a, b) => a.receivedAt.localeCompare(b.receivedAt) || a.id.localeCompare(b.id));
    },
    decide: (id, state, note) => {
      const where = `upload ${id}`;
      return this.locked(async () => {
        const file = this.p('uploads', `${id}.json`);
        const record = UPLOAD_ID.test(id) ? await readJson<UploadRecord>(file) : undefined;
        if (!record) throw notFound(where, where, 'see "hvnode-config-server admin upload list"');
        if (record.state !== 'pending')
          throw dataError(
            `upload ${id} is ${record.state} already${record.note ? ` (${record.note})` : ''}`,
            where,
            'an upload is decided once',
          );
        const decided: UploadRecord = { ...record, state, ...(note ? { note } : {}) };
        await writeAtomic(file, `${JSON.stringify(decided)}\n`, SECRET);
        return decided;
      });
    },
  };

  // ---- node status

  nodes: Store['nodes'] = {
    report: async (status: NodeStatus) => {
      const name = macFile(status.mac, 'node status');
      await writeAtomic(this.p('status', `${name}.json`), `${JSON.stringify(status)}\n`);
    },
    list: async () => {
      const out: NodeStatus[] = [];
      for (const name of await listNames(this.p('status'))) {
        const s = await readJson<NodeStatus>(this.p('status', name));
        if (s) out.push(s);
      }
      return out;
    },
    get: (mac) => readJson<NodeStatus>(this.p('status', `${macFile(mac, 'node status')}.json`)),
  };

  // ---- audit log

  audit: Store['audit'] = {
    append: (entry: AuditEntry) => appendLine(this.p('audit.log'), JSON.stringify(entry)),
    list: async (limit?: number) => {
      const text = (await readOrNone(this.p('audit.log')))?.toString('utf8') ?? '';
      const lines = text.split('\n').filter(Boolean);
      const wanted = limit === undefined ? lines : lines.slice(Math.max(0, lines.length - limit));
      return wanted.flatMap((l) => {
        try {
          return [JSON.parse(l) as AuditEntry];
        } catch {
          return []; // a line cut short by a crash
        }
      });
    },
  };

  // ---- keys

  keys: Store['keys'] = {
    signing: async (): Promise<ServerKeys> => {
      const file = this.p('keys', 'signing.pem');
      let pem = (await readOrNone(file))?.toString('utf8');
      if (pem === undefined) {
        await writeOnce(file, generateSigningKey().privateKeyPem, SECRET);
        pem = (await readFile(file)).toString('utf8');
      }
      const publicKeyPem = createPublicKey(createPrivateKey(pem))
        .export({ type: 'spki', format: 'pem' })
        .toString();
      return { privateKeyPem: pem, publicKeyPem };
    },
    adminToken: async () => {
      const file = this.p('keys', 'admin-token');
      const existing = (await readOrNone(file))?.toString('utf8').trim();
      if (existing) return existing;
      await writeOnce(file, `${randomBytes(32).toString('base64url')}\n`, SECRET);
      return (await readFile(file, 'utf8')).trim();
    },
    tls: async (hostnames: string[]) => {
      const file = this.p('keys', 'tls.pem');
      const existing = await readOrNone(file);
      if (existing) return splitTlsPem(existing.toString('utf8'), file);
      return this.locked(async () => {
        const again = await readOrNone(file);
        if (again) return splitTlsPem(again.toString('utf8'), file);
        const made = await selfSignedCertificate(hostnames, this.tempDir('tls'));
        await writeOnce(file, `${made.keyPem}${made.certPem}`, SECRET);
        return splitTlsPem(await readFile(file, 'utf8'), file);
      });
    },
  };
}

/** A profile as stored: only known fields, args as words, names checked. */
function cleanProfile(p: BootProfile, where: string): BootProfile {
  const args = (p.args ?? []).flatMap((a) => a.split(/\s+/)).filter(Boolean);
  for (const a of args)
    if (/[\x00-\x1f\x7f]/.test(a))
      throw dataError(`kernel argument ${JSON.stringify(a)} holds a control character`, where);
  return {
    ...(p.image !== undefined ? { image: checkImageVersion(p.image, where) } : {}),
    args,
    ...(p.group !== undefined ? { group: checkGroupName(p.group, where) } : {}),
  };
}

function splitTlsPem(text: string, file: string): { certPem: string; keyPem: string } {
  const key = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n?/.exec(text)?.[0];
  const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/.exec(text)?.[0];
  if (!key || !cert)
    throw new HvError(`${file} does not hold a private key and a certificate`, {
      hint: 'remove it: a new self-signed certificate is made at the next start',
    });
  return { certPem: cert, keyPem: key };
}

/** A self-signed P-256 certificate for the hostnames (IP addresses become IP SANs), by openssl. */
export async function selfSignedCertificate(
  hostnames: string[],
  workDir: string,
): Promise<{ certPem: string; keyPem: string }> {
  const names = hostnames.length > 0 ? hostnames : ['localhost'];
  for (const h of names)
    if (!/^[A-Za-z0-9.:*-]+$/.test(h))
      throw dataError(`not a host name or address: ${JSON.stringify(h)}`, 'TLS certificate');
  const san = names.map((h) => (/^[\d.]+$/.test(h) || h.includes(':') ? `IP:${h}` : `DNS:${h}`)).join(',');
  const key = join(workDir, 'key.pem');
  const cert = join(workDir, 'cert.pem');
  try {
    await run(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-days',
        '825',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-subj',
        `/CN=${names[0]}`,
        '-addext',
        `subjectAltName=${san}`,
      ],
      { where: 'TLS certificate' },
    );
    return { certPem: await readFile(cert, 'utf8'), keyPem: await readFile(key, 'utf8') };
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}
