// The AdminApi over a Store: what `admin --data DIR` runs, and what the HTTP server's admin
// handlers run (with `who` naming the caller). Validation comes before any write; every call
// that changes something appends one audit entry, ok or error.

import { dataError, HvError, normalizeMac } from '../common/index.ts';
import { keyFingerprint, packBundle, readUploadArchive, validateNodeConfig } from '../node-runtime/index.ts';
import type {
  AdminApi,
  BundleInput,
  GroupView,
  ImageView,
  KeyInfo,
  NodeView,
  ProfileChange,
  UploadView,
} from './admin-api.ts';
import { effectiveProfile } from './boot/boot.ts';
import { addImage } from './boot/images.ts';
import { checkGroupName, checkImageVersion } from './store/dir-store.ts';
import type { AuditEntry, BootProfile, Store } from './store/types.ts';
import { imageUsers } from './store/usage.ts';

export interface LocalAdminOptions {
  /** Who acts, for the audit log: 'cli', 'token', 'cert:<CN>'. */
  who: string;
}

function notFound(what: string, where: string, hint?: string): HvError {
  return dataError(`${what} not found`, where, hint);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A profile with a change applied (undefined keeps, null clears). */
function applyChange(old: BootProfile | undefined, change: ProfileChange): BootProfile {
  const p: BootProfile = { ...(old ?? { args: [] }) };
  if (change.image === null) delete p.image;
  else if (change.image !== undefined) p.image = change.image;
  if (change.group === null) delete p.group;
  else if (change.group !== undefined) p.group = change.group;
  if (change.args !== undefined) p.args = change.args;
  return p;
}

function checkNodeConfig(config: unknown, where: string): void {
  validateNodeConfig(config).throwIfErrors(`${where}: the configuration is not a valid NodeConfig`);
}

export class LocalAdminApi implements AdminApi {
  readonly description: string;

  constructor(
    readonly store: Store,
    readonly o: LocalAdminOptions = { who: 'cli' },
  ) {
    this.description = store.description;
  }

  /** Runs a change and appends its audit entry (the error's message when it fails). */
  private async audited<T>(
    action: string,
    target: string | undefined,
    fn: () => Promise<T>,
    detail?: (r: T) => string,
  ): Promise<T> {
    const entry = (result: AuditEntry['result'], d?: string): AuditEntry => ({
      at: new Date().toISOString(),
      who: this.o.who,
      action,
      ...(target !== undefined ? { target } : {}),
      result,
      ...(d ? { detail: d.slice(0, 500) } : {}),
    });
    let r: T;
    try {
      r = await fn();
    } catch (err) {
      await this.store.audit.append(entry('error', errorText(err)));
      throw err;
    }
    await this.store.audit.append(entry('ok', detail?.(r)));
    return r;
  }

  private async signingKeyPem(): Promise<string> {
    return (await this.store.keys.signing()).privateKeyPem;
  }

  images: AdminApi['images'] = {
    list: async () => {
      const def = await this.store.images.getDefault();
      const out: ImageView[] = [];
      for (const r of await this.store.images.list())
        out.push({ ...r, default: r.version === def, usedBy: await imageUsers(this.store, r.version) });
      return out;
    },
    add: (isoPath) =>
      this.audited(
        'image add',
        isoPath,
        () => addImage(this.store, isoPath),
        (r) => `version ${r.version}`,
      ),
    rm: (version) =>
      this.audited('image rm', version, async () => {
        checkImageVersion(version, 'image rm');
        await this.store.images.remove(version);
      }),
    setDefault: (version) =>
      this.audited('image default', version, async () => {
        checkImageVersion(version, 'image default');
        await this.store.images.setDefault(version);
      }),
  };

  nodes: AdminApi['nodes'] = {
    set: async (macText, change) => {
      const mac = normalizeMac(macText, 'node set: MAC');
      return this.audited('node set', mac, async () => {
        const where = `node set ${mac}`;
        if (typeof change.image === 'string') checkImageVersion(change.image, where);
        if (typeof change.group === 'string') checkGroupName(change.group, where);
        const profile = applyChange(await this.store.profiles.get(mac), change);
        await this.store.profiles.set(mac, profile);
        return (await this.store.profiles.get(mac)) ?? profile;
      });
    },
    unset: async (macText) => {
      const mac = normalizeMac(macText, 'node unset: MAC');
      return this.audited('node unset', mac, () => this.store.profiles.remove(mac));
    },
    list: async () => {
      const macs = new Set<string>();
      for (const { mac } of await this.store.profiles.list()) macs.add(mac);
      for (const b of await this.store.bundles.list()) macs.add(b.mac);
      for (const s of await this.store.nodes.list()) macs.add(s.mac);
      const out: NodeView[] = [];
      for (const mac of [...macs].sort()) out.push(await this.nodeView(mac));
      return out;
    },
    show: async (macText) => this.nodeView(normalizeMac(macText, 'node show: MAC')),
  };

  private async nodeView(mac: string): Promise<NodeView> {
    const [profile, effective, bundle, status] = await Promise.all([
      this.store.profiles.get(mac),
      effectiveProfile(this.store, mac),
      this.store.bundles.head(mac),
      this.store.nodes.get(mac),
    ]);
    return {
      mac,
      ...(profile ? { profile } : {}),
      effective,
      ...(bundle ? { bundle } : {}),
      ...(status ? { status } : {}),
    };
  }

  groups: AdminApi['groups'] = {
    set: (name, change) =>
      this.audited('group set', name, async () => {
        const where = `group set ${name}`;
        checkGroupName(name, where);
        if (typeof change.image === 'string') checkImageVersion(change.image, where);
        const { group: _, ...profile } = applyChange(await this.store.profiles.getGroup(name), change);
        await this.store.profiles.setGroup(name, profile);
        return (await this.store.profiles.getGroup(name)) ?? profile;
      }),
    list: async () => {
      const nodes = await this.store.profiles.list();
      const out: GroupView[] = [];
      for (const { name, profile } of await this.store.profiles.listGroups())
        out.push({ name, profile, members: nodes.filter((n) => n.profile.group === name).map((n) => n.mac) });
      return out;
    },
  };

  bundles: AdminApi['bundles'] = {
    put: async (macText, input: BundleInput) => {
      const mac = normalizeMac(macText, 'bundle put: MAC');
      return this.audited(
        'bundle put',
        mac,
        async () => {
          checkNodeConfig(input.config, `bundle put ${mac}`);
          const data = await packBundle({
            config: input.config,
            overlay: input.overlay ?? [],
            signingKeyPem: await this.signingKeyPem(),
            mac,
            ...(input.encryptToPem ? { encryptToPem: input.encryptToPem } : {}),
          });
          return this.store.bundles.put(mac, data, { encrypted: input.encryptToPem !== undefined });
        },
        (r) => `${r.etag}${r.encrypted ? ' encrypted' : ''}`,
      );
    },
    get: async (macText) => {
      const mac = normalizeMac(macText, 'bundle get: MAC');
      const b = await this.store.bundles.get(mac);
      if (!b)
        throw notFound(`bundle for ${mac}`, 'bundle get', 'see "hvnode-config-server admin bundle list"');
      return b;
    },
    rm: async (macText) => {
      const mac = normalizeMac(macText, 'bundle rm: MAC');
      return this.audited('bundle rm', mac, () => this.store.bundles.remove(mac));
    },
    list: () => this.store.bundles.list(),
  };

  private async openUpload(id: string, where: string) {
    const u = await this.store.uploads.get(id);
    if (!u) throw notFound(`upload ${id}`, where, 'see "hvnode-config-server admin upload list"');
    return { ...u, archive: await readUploadArchive(u.data) };
  }

  uploads: AdminApi['uploads'] = {
    list: (state) => this.store.uploads.list(state),
    show: async (id): Promise<UploadView> => {
      const u = await this.openUpload(id, 'upload show');
      return {
        record: u.record,
        config: u.archive.config,
        overlay: u.archive.overlay.map((f) => ({
          path: f.path,
          type: f.type,
          size: f.data.length,
          mode: f.mode,
          ...(f.target !== undefined ? { target: f.target } : {}),
        })),
        nodeKey: u.archive.nodeKeyPem !== undefined,
      };
    },
    approve: async (id, macText, opts = {}) => {
      const mac = normalizeMac(macText, 'upload approve: --mac');
      return this.audited(
        'upload approve',
        id,
        async () => {
          const where = `upload approve ${id}`;
          const u = await this.openUpload(id, where);
          if (u.record.state !== 'pending')
            throw dataError(`upload ${id} is ${u.record.state} already`, where, 'an upload is decided once');
          if (opts.encrypt && u.archive.nodeKeyPem === undefined)
            throw dataError(
              `upload ${id} carries no node key: it cannot be encrypted to the node`,
              where,
              'approve it without --encrypt, or have the node upload again with its key',
            );
          const encryptToPem = opts.encrypt ? u.archive.nodeKeyPem : undefined;
          const data = await packBundle({
            config: u.archive.config,
            overlay: u.archive.overlay,
            signingKeyPem: await this.signingKeyPem(),
            mac,
            ...(encryptToPem ? { encryptToPem } : {}),
          });
          // decided first (once, under the store's lock): of two approvals only one publishes
          const upload = await this.store.uploads.decide(id, 'approved', mac);
          const bundle = await this.store.bundles.put(mac, data, {
            encrypted: encryptToPem !== undefined,
            fromUpload: id,
          });
          return { upload, bundle };
        },
        (r) => `published for ${mac} (${r.bundle.etag}${r.bundle.encrypted ? ', encrypted' : ''})`,
      );
    },
    reject: (id, reason) =>
      this.audited('upload reject', id, async () => {
        if (reason.trim() === '')
          throw dataError('a rejection needs a reason', `upload reject ${id}`, 'add --reason "..."');
        if (!(await this.store.uploads.get(id)))
          throw notFound(`upload ${id}`, 'upload reject', 'see "hvnode-config-server admin upload list"');
        return this.store.uploads.decide(id, 'rejected', reason.trim());
      }),
  };

  audit: AdminApi['audit'] = {
    list: (limit) => this.store.audit.list(limit),
  };

  key: AdminApi['key'] = {
    fingerprint: async () => (await this.key.show()).fingerprint,
    show: async (): Promise<KeyInfo> => {
      const k = await this.store.keys.signing();
      return { fingerprint: keyFingerprint(k.publicKeyPem), publicKeyPem: k.publicKeyPem };
    },
  };
}
