// The route table: every endpoint of the API, once, with its method, path, who may call it, the
// schemas of its inputs, its body limit and rate limit, and a thin handler. The app registers
// exactly these (app.ts), the OpenAPI document describes exactly these (a test compares them),
// and the auth test calls every `admin` route without credentials. Handlers use the Store and the
// AdminApi only: no file system here (a database-backed store serves the same routes).

import type { Request, Response } from 'express';
import { normalizeMac } from '../../common/index.ts';
import type { AdminApi } from '../admin-api.ts';
import type { Store } from '../store/types.ts';
import type { TftpStats } from '../tftp/index.ts';
import type { AuthConfig } from './auth.ts';
import { HttpError, notFound } from './errors.ts';
import type { Metrics } from './metrics.ts';
import type { TokenBuckets } from './rate-limit.ts';
import { BODY, PARAMS, QUERY } from './schemas.ts';
import type { JsonSchema } from './validate.ts';

export const KiB = 1024;
export const MiB = 1024 * KiB;

/** Body limits (bytes): beyond them, 413 before the rest of the body is read. */
export const LIMITS = {
  upload: 8 * MiB,
  status: 16 * KiB,
  adminJson: 16 * MiB,
};

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface Input {
  params: Record<string, unknown>;
  query: Record<string, unknown>;
  body: unknown;
  /** The caller of an admin route: 'token' or 'cert:<CN>'. */
  who: string;
  /** The client's address (IPv4-mapped IPv6 written as IPv4). */
  address: string;
}

/** What the handlers may use. */
export interface HttpContext {
  store: Store;
  /** The admin operations, acting (and audited) as `who`. */
  admin(who: string): AdminApi;
  auth: AuthConfig;
  /** The node's iPXE script (one that says so and exits when it has no image to boot). */
  ipxeScript(mac: string): Promise<string>;
  /** Validates a node's upload (unsigned bundle tar); throws an HvError naming the bad entry. */
  readUpload(data: Buffer): Promise<unknown>;
  metrics: Metrics;
  /** The TFTP server's counters (undefined: no TFTP server). */
  tftpStats?: () => TftpStats | undefined;
  buckets: { upload: TokenBuckets; status: TokenBuckets };
  openapi: () => unknown;
}

export interface Route {
  method: Method;
  /** express path (`:name` parameters, `*name` for the rest of the path). */
  path: string;
  auth: 'public' | 'admin';
  summary: string;
  /** Schemas of the path parameters and the query; absent: none allowed. */
  params?: JsonSchema;
  query?: JsonSchema;
  body?: { kind: 'json'; schema: JsonSchema; limit: number } | { kind: 'binary'; limit: number };
  /** The per-source token bucket this anonymous write draws from. */
  rate?: 'upload' | 'status';
  handle: (ctx: HttpContext, input: Input, res: Response, req: Request) => Promise<void>;
}

const mac = (input: Input) => normalizeMac(String(input.params.mac), 'path parameter "mac"');
const str = (v: unknown) => String(v);

/** A strong ETag as sent ("sha256-…" in quotes) and If-None-Match's comparison (weak, RFC 9110). */
export function quoteEtag(etag: string): string {
  return `"${etag}"`;
}

export function etagMatches(ifNoneMatch: string, etag: string): boolean {
  if (ifNoneMatch.trim() === '*') return true;
  return ifNoneMatch
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .includes(quoteEtag(etag));
}

const json = (res: Response, value: unknown, status = 200) => {
  res.status(status).json(value);
};

/** An admin route whose handler calls one AdminApi method and answers its result as JSON. */
function admin(
  method: Method,
  path: string,
  summary: string,
  call: (api: AdminApi, input: Input) => Promise<unknown>,
  o: Partial<Pick<Route, 'params' | 'query' | 'body'>> & { status?: number } = {},
): Route {
  return {
    method,
    path,
    auth: 'admin',
    summary,
    ...o,
    handle: async (ctx, input, res) => json(res, await call(ctx.admin(input.who), input), o.status ?? 200),
  };
}

const jsonBody = (schema: JsonSchema, limit = LIMITS.adminJson) => ({ kind: 'json' as const, schema, limit });

export const ROUTES: Route[] = [
  // ---- public
  {
    method: 'get',
    path: '/healthz',
    auth: 'public',
    summary: 'liveness: 200 {"ok": true} while the server answers',
    handle: async (_ctx, _input, res) => json(res, { ok: true }),
  },
  {
    method: 'get',
    path: '/metrics',
    auth: 'public',
    summary: 'Prometheus text format: HTTP requests, TFTP transfers, pending uploads',
    handle: async (ctx, _input, res) => {
      const pendingUploads = (await ctx.store.uploads.list('pending')).length;
      res
        .type('text/plain; version=0.0.4; charset=utf-8')
        .send(ctx.metrics.render({ tftp: ctx.tftpStats?.(), pendingUploads }));
    },
  },
  {
    method: 'get',
    path: '/v1/openapi.json',
    auth: 'public',
    summary: 'this API as an OpenAPI 3.1 document',
    handle: async (ctx, _input, res) => json(res, ctx.openapi()),
  },
  {
    method: 'get',
    path: '/v1/bundles/:mac',
    auth: 'public',
    summary: "the node's signed bundle (ETag / If-None-Match: 304 when unchanged)",
    params: PARAMS.mac,
    handle: async (ctx, input, res, req) => {
      const m = mac(input);
      const missing = () =>
        notFound(
          `no bundle for ${m}`,
          'an admin publishes one: hvnode-config-server admin bundle put MAC FILE',
        );
      const inm = req.headers['if-none-match'];
      if (inm) {
        const head = await ctx.store.bundles.head(m);
        if (!head) throw missing();
        if (etagMatches(inm, head.etag)) {
          res
            .status(304)
            .set({ ETag: quoteEtag(head.etag), 'Cache-Control': 'no-cache' })
            .end();
          return;
        }
      }
      const b = await ctx.store.bundles.get(m);
      if (!b) throw missing();
      // the hot path of a boot storm: plain node:http, none of res.send's content negotiation
      res.writeHead(200, {
        'Content-Type': 'application/octet-stream',
        'Content-Length': String(b.data.length),
        ETag: quoteEtag(b.record.etag),
        'Cache-Control': 'no-cache',
      });
      res.end(b.data);
    },
  },
  {
    method: 'get',
    path: '/v1/boot/:mac',
    auth: 'public',
    summary: "the node's iPXE script (its boot profile: own, group's or the default image)",
    params: PARAMS.mac,
    handle: async (ctx, input, res) => {
      const m = mac(input);
      const script = await ctx.ipxeScript(m);
      res.type('text/plain; charset=utf-8').set('Cache-Control', 'no-cache').send(script);
    },
  },
  {
    method: 'get',
    path: '/images/:version/http/*path',
    auth: 'public',
    summary: "a file of an image's http/ tree (HTTP boot: kernel, initrd, the layers and their list)",
    params: PARAMS.imageFile,
    handle: async (ctx, input, res) => {
      const version = str(input.params.version);
      const segments = input.params.path as string[];
      // the store checks containment on the real path; refuse the obvious here too
      const bad = segments.find((s) => s === '.' || s === '..' || /[/\\\0]/.test(s));
      const missing = notFound(`no file ${segments.join('/')} in image ${version}`);
      if (bad !== undefined) throw missing;
      const file = await ctx.store.images.filePath(version, 'http', segments.join('/'));
      if (file === undefined) throw missing;
      await new Promise<void>((resolve, reject) =>
        res.sendFile(file, { dotfiles: 'allow', maxAge: 0 }, (err) =>
          err && !res.headersSent ? reject(err) : resolve(),
        ),
      );
    },
  },
  {
    method: 'post',
    path: '/v1/uploads',
    auth: 'public',
    summary:
      "a node's captured /config (unsigned bundle tar): validated, kept pending until an admin approves it",
    query: QUERY.upload,
    body: { kind: 'binary', limit: LIMITS.upload },
    rate: 'upload',
    handle: async (ctx, input, res) => {
      const m = normalizeMac(str(input.query.mac), 'query parameter "mac"');
      const data = input.body as Buffer;
      if (data.length === 0)
        throw new HttpError(400, 'empty upload', 'send the tar archive that hvnode-node upload makes');
      await ctx.readUpload(data);
      const record = await ctx.store.uploads.add({ mac: m, address: input.address }, data);
      json(res, { id: record.id, state: record.state }, 202);
    },
  },
  {
    method: 'post',
    path: '/v1/nodes/:mac/status',
    auth: 'public',
    summary: 'a node reports a step of its boot: {step, state, message}',
    params: PARAMS.mac,
    body: { kind: 'json', schema: BODY.status, limit: LIMITS.status },
    rate: 'status',
    handle: async (ctx, input, res) => {
      const body = input.body as {
        step: string;
        state: 'progress' | 'ok' | 'waiting' | 'error';
        message: string;
      };
      await ctx.store.nodes.report({
        mac: mac(input),
        step: body.step,
        state: body.state,
        message: body.message,
        address: input.address,
        at: new Date().toISOString(),
      });
      res.status(204).end();
    },
  },

  // ---- admin: uploads
  admin(
    'get',
    '/v1/admin/uploads',
    'list uploads (?state=pending|approved|rejected)',
    (api, i) => api.uploads.list(i.query.state as 'pending' | undefined),
    { query: QUERY.uploadList },
  ),
  admin(
    'get',
    '/v1/admin/uploads/:id',
    'an upload: its record, NodeConfig and overlay file list',
    (api, i) => api.uploads.show(str(i.params.id)),
    { params: PARAMS.id },
  ),
  admin(
    'post',
    '/v1/admin/uploads/:id/approve',
    "approve an upload: validate, sign (encrypt to the node's key with encrypt), publish as mac's bundle",
    (api, i) => {
      const b = i.body as { mac: string; encrypt?: boolean };
      return api.uploads.approve(str(i.params.id), b.mac, { encrypt: b.encrypt === true });
    },
    { params: PARAMS.id, body: jsonBody(BODY.approve) },
  ),
  admin(
    'post',
    '/v1/admin/uploads/:id/reject',
    'reject an upload (it is never served)',
    (api, i) => api.uploads.reject(str(i.params.id), (i.body as { reason: string }).reason),
    { params: PARAMS.id, body: jsonBody(BODY.reject) },
  ),

  // ---- admin: bundles
  admin('get', '/v1/admin/bundles', 'list published bundles', (api) => api.bundles.list()),
  admin(
    'get',
    '/v1/admin/bundles/:mac',
    "a MAC's bundle: its record and the signed bytes (base64)",
    async (api, i) => {
      const b = await api.bundles.get(str(i.params.mac));
      return { record: b.record, data: b.data.toString('base64') };
    },
    { params: PARAMS.mac },
  ),
  admin(
    'put',
    '/v1/admin/bundles/:mac',
    'publish a bundle for a MAC: the server validates the NodeConfig, signs (and optionally encrypts) it',
    (api, i) => {
      const b = i.body as {
        config: unknown;
        overlay?: Array<{
          path: string;
          type?: 'file' | 'dir' | 'symlink';
          data?: string;
          mode?: number;
          target?: string;
        }>;
        encryptToPem?: string;
      };
      return api.bundles.put(str(i.params.mac), {
        config: b.config,
        overlay: b.overlay?.map(({ data, ...f }) => ({
          ...f,
          ...(data !== undefined ? { data: Buffer.from(data, 'base64') } : {}),
        })),
        encryptToPem: b.encryptToPem,
      });
    },
    { params: PARAMS.mac, body: jsonBody(BODY.bundlePut) },
  ),
  admin(
    'delete',
    '/v1/admin/bundles/:mac',
    "remove a MAC's bundle ({removed: false} when it had none)",
    async (api, i) => ({ removed: await api.bundles.rm(str(i.params.mac)) }),
    { params: PARAMS.mac },
  ),

  // ---- admin: images
  admin('get', '/v1/admin/images', 'list images (which is the default, what uses each)', (api) =>
    api.images.list(),
  ),
  admin(
    'post',
    '/v1/admin/images',
    'add an image from an ISO at a path on the server (runs iso-to-pxeboot)',
    (api, i) => api.images.add((i.body as { path: string }).path),
    { body: jsonBody(BODY.imageAdd, 16 * KiB), status: 201 },
  ),
  admin(
    'delete',
    '/v1/admin/images/:version',
    'remove an image (refused while a node, a group or the default uses it)',
    async (api, i) => {
      await api.images.rm(str(i.params.version));
      return { removed: true };
    },
    { params: PARAMS.version },
  ),
  admin(
    'post',
    '/v1/admin/images/:version/default',
    'make an image the default (what unknown MACs boot)',
    async (api, i) => {
      await api.images.setDefault(str(i.params.version));
      return { default: str(i.params.version) };
    },
    { params: PARAMS.version },
  ),

  // ---- admin: nodes and groups
  admin('get', '/v1/admin/nodes', 'list nodes: profile, effective boot, bundle, last status', (api) =>
    api.nodes.list(),
  ),
  admin(
    'get',
    '/v1/admin/nodes/:mac',
    'one node (any MAC: an unknown one shows the default boot)',
    (api, i) => api.nodes.show(str(i.params.mac)),
    { params: PARAMS.mac },
  ),
  admin(
    'patch',
    '/v1/admin/nodes/:mac',
    "change a MAC's boot profile (image, args, group; null clears)",
    (api, i) => api.nodes.set(str(i.params.mac), i.body as object),
    { params: PARAMS.mac, body: jsonBody(BODY.profileChange, 64 * KiB) },
  ),
  admin(
    'delete',
    '/v1/admin/nodes/:mac/profile',
    "remove a MAC's own boot profile ({removed: false} when it had none)",
    async (api, i) => ({ removed: await api.nodes.unset(str(i.params.mac)) }),
    { params: PARAMS.mac },
  ),
  admin('get', '/v1/admin/groups', 'list groups with their profile and members', (api) => api.groups.list()),
  admin(
    'patch',
    '/v1/admin/groups/:name',
    "change (or create) a group's boot profile (image, args)",
    (api, i) => api.groups.set(str(i.params.name), i.body as object),
    { params: PARAMS.group, body: jsonBody(BODY.groupChange, 64 * KiB) },
  ),

  // ---- admin: audit and key
  admin(
    'get',
    '/v1/admin/audit',
    'the audit log, oldest first (?limit=N: the newest N)',
    (api, i) => api.audit.list(i.query.limit as number | undefined),
    { query: QUERY.audit },
  ),
  admin('get', '/v1/admin/key', "the server's signing key: fingerprint (config_key=) and public key", (api) =>
    api.key.show(),
  ),
];

/** `/v1/bundles/:mac` → `/v1/bundles/{mac}` (OpenAPI's form). */
export function openApiPath(path: string): string {
  return path.replace(/[:*]([A-Za-z_]\w*)/g, '{$1}');
}
