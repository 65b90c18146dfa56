// The AdminApi over HTTP: `hvnode-config-server admin --url URL --token T ...` against a running
// server, the same commands as with --data DIR. Errors come back as the server's
// {"error": {"message", "hint"}} and become HvErrors with the exit code the local command has
// (65 for refused input, 2 for missing or wrong credentials, 1 when the server cannot be reached).
//
// HTTPS with the server's self-signed certificate: trust it with HVNODE_CA_FILE=FILE (a PEM file
// holding that certificate or its CA; `openssl x509 -in DIR/keys/tls.pem` prints it) or Node's
// NODE_EXTRA_CA_CERTS.

import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { resolve } from 'node:path';
import { dataError, ExitCode, HvError, normalizeMac } from '../common/index.ts';
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
import type {
  AuditEntry,
  BootProfile,
  BundleRecord,
  ImageRecord,
  UploadRecord,
  UploadState,
} from './store/types.ts';

export interface RemoteAdminOptions {
  /** PEM certificate(s) to trust for HTTPS besides the system's (the server's self-signed one). */
  caPem?: string;
  /** Per-request timeout (default 10 min: `image add` runs iso-to-pxeboot on the server). */
  timeoutMs?: number;
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

const enc = encodeURIComponent;

function checkUrl(text: string): URL {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw dataError(`--url ${JSON.stringify(text)}: not a URL`, 'admin', 'e.g. --url https://10.0.0.1:8443');
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    throw dataError(
      `--url ${text}: must be http:// or https://`,
      'admin',
      'e.g. --url https://10.0.0.1:8443',
    );
  if (u.username || u.password || u.search || u.hash)
    throw dataError(
      `--url ${text}: no credentials, query or fragment`,
      'admin',
      'give the token with --token',
    );
  return u;
}

/** HVNODE_CA_FILE's certificates, when set. */
export function caFromEnvironment(env = process.env): string | undefined {
  const file = env.HVNODE_CA_FILE;
  if (!file) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw dataError(
      `HVNODE_CA_FILE=${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      'admin',
      'give a PEM file with the server certificate',
    );
  }
}

export class RemoteAdminApi implements AdminApi {
  readonly description: string;
  private readonly base: URL;

  constructor(
    url: string,
    private readonly token: string,
    private readonly o: RemoteAdminOptions = {},
  ) {
    this.base = checkUrl(url);
    this.description = this.base.origin;
    if (!/^[\x21-\x7e]+$/.test(token))
      throw dataError('--token: not a token (printable, no spaces)', 'admin');
  }

  private request<T>(method: Method, path: string, body?: unknown): Promise<T> {
    const url = new URL(path, this.base);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.token}`,
      Accept: 'application/json',
      ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': String(payload.length) } : {}),
    };
    const where = `${method} ${url.origin}${url.pathname}`;
    return new Promise<T>((done, fail) => {
      const onResponse = (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text === '' ? undefined : JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            done(parsed as T);
            return;
          }
          const err = (
            parsed as { error?: { message?: string; hint?: string; details?: string[] } } | undefined
          )?.error;
          const message = err?.message ?? `HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ''}`;
          const exitCode =
            status === 401 || status === 403
              ? ExitCode.precondition
              : status >= 400 && status < 500
                ? ExitCode.dataError
                : ExitCode.failure;
          fail(
            new HvError(message, {
              where: `${this.description} (${status})`,
              hint:
                err?.hint ??
                (status === 403 ? "check --token (the data directory's keys/admin-token)" : undefined),
              exitCode,
              diagnostics: (err?.details ?? []).map((d) => ({ severity: 'error' as const, message: d })),
            }),
          );
        });
      };
      const opts = { method, headers, timeout: this.o.timeoutMs ?? 600_000 };
      const req =
        url.protocol === 'https:'
          ? httpsRequest(url, { ...opts, ...(this.o.caPem ? { ca: this.o.caPem } : {}) }, onResponse)
          : httpRequest(url, opts, onResponse);
      req.on('timeout', () => req.destroy(new Error('no answer in time')));
      req.on('error', (e: NodeJS.ErrnoException) => {
        const tlsTrouble = /certificate|self.signed|SSL|TLS/i.test(`${e.code ?? ''} ${e.message}`);
        fail(
          new HvError(`cannot reach the server: ${e.code ?? ''}${e.code ? ' ' : ''}${e.message}`.trim(), {
            where,
            exitCode: ExitCode.failure,
            hint: tlsTrouble
              ? 'trust its certificate: HVNODE_CA_FILE=FILE (openssl x509 -in DIR/keys/tls.pem > FILE on the server)'
              : 'is "hvnode-config-server serve" running there?',
          }),
        );
      });
      req.end(payload);
    });
  }

  images: AdminApi['images'] = {
    list: () => this.request<ImageView[]>('GET', '/v1/admin/images'),
    // the ISO is read by the server: a path there (made absolute here for a server on this machine)
    add: (isoPath) => this.request<ImageRecord>('POST', '/v1/admin/images', { path: resolve(isoPath) }),
    rm: async (version) => {
      await this.request('DELETE', `/v1/admin/images/${enc(version)}`);
    },
    setDefault: async (version) => {
      await this.request('POST', `/v1/admin/images/${enc(version)}/default`);
    },
  };

  nodes: AdminApi['nodes'] = {
    set: (mac, change: ProfileChange) =>
      this.request<BootProfile>(
        'PATCH',
        `/v1/admin/nodes/${enc(normalizeMac(mac, 'node set: MAC'))}`,
        change,
      ),
    unset: async (mac) =>
      (
        await this.request<{ removed: boolean }>(
          'DELETE',
          `/v1/admin/nodes/${enc(normalizeMac(mac, 'node unset: MAC'))}/profile`,
        )
      ).removed,
    list: () => this.request<NodeView[]>('GET', '/v1/admin/nodes'),
    show: (mac) =>
      this.request<NodeView>('GET', `/v1/admin/nodes/${enc(normalizeMac(mac, 'node show: MAC'))}`),
  };

  groups: AdminApi['groups'] = {
    set: (name, change) => this.request<BootProfile>('PATCH', `/v1/admin/groups/${enc(name)}`, change),
    list: () => this.request<GroupView[]>('GET', '/v1/admin/groups'),
  };

  bundles: AdminApi['bundles'] = {
    put: (mac, input: BundleInput) =>
      this.request<BundleRecord>('PUT', `/v1/admin/bundles/${enc(normalizeMac(mac, 'bundle put: MAC'))}`, {
        config: input.config,
        ...(input.overlay
          ? {
              overlay: input.overlay.map(({ data, ...f }) => ({
                ...f,
                ...(data !== undefined ? { data: data.toString('base64') } : {}),
              })),
            }
          : {}),
        ...(input.encryptToPem ? { encryptToPem: input.encryptToPem } : {}),
      }),
    get: async (mac) => {
      const r = await this.request<{ record: BundleRecord; data: string }>(
        'GET',
        `/v1/admin/bundles/${enc(normalizeMac(mac, 'bundle get: MAC'))}`,
      );
      return { record: r.record, data: Buffer.from(r.data, 'base64') };
    },
    rm: async (mac) =>
      (
        await this.request<{ removed: boolean }>(
          'DELETE',
          `/v1/admin/bundles/${enc(normalizeMac(mac, 'bundle rm: MAC'))}`,
        )
      ).removed,
    list: () => this.request<BundleRecord[]>('GET', '/v1/admin/bundles'),
  };

  uploads: AdminApi['uploads'] = {
    list: (state?: UploadState) =>
      this.request<UploadRecord[]>('GET', `/v1/admin/uploads${state ? `?state=${enc(state)}` : ''}`),
    show: (id) => this.request<UploadView>('GET', `/v1/admin/uploads/${enc(id)}`),
    approve: (id, mac, opts = {}) =>
      this.request<{ upload: UploadRecord; bundle: BundleRecord }>(
        'POST',
        `/v1/admin/uploads/${enc(id)}/approve`,
        {
          mac: normalizeMac(mac, 'upload approve: --mac'),
          ...(opts.encrypt ? { encrypt: true } : {}),
        },
      ),
    reject: (id, reason) =>
      this.request<UploadRecord>('POST', `/v1/admin/uploads/${enc(id)}/reject`, { reason }),
  };

  audit: AdminApi['audit'] = {
    list: (limit) =>
      this.request<AuditEntry[]>('GET', `/v1/admin/audit${limit !== undefined ? `?limit=${limit}` : ''}`),
  };

  key: AdminApi['key'] = {
    fingerprint: async () => (await this.key.show()).fingerprint,
    show: () => this.request<KeyInfo>('GET', '/v1/admin/key'),
  };
}
