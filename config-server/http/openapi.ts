// The API as an OpenAPI 3.1 document, written by hand (GET /v1/openapi.json). The input schemas
// are the ones ajv checks (schemas.ts); a test checks that every route the app serves is here
// with its method, and nothing else is.

import { runtimeVersion } from '../../common/index.ts';
import { LIMITS } from './routes.ts';
import { BODY, ERROR, GROUP, MAC, QUERY, UPLOAD_ID, VERSION } from './schemas.ts';
import type { JsonSchema } from './validate.ts';

const ref = (name: string) => ({ $ref: `#/components/responses/${name}` });
const jsonContent = (schema: JsonSchema = {}) => ({ 'application/json': { schema } });
const ok = (description: string, schema: JsonSchema = {}) => ({ description, content: jsonContent(schema) });
const pathParam = (name: string, schema: JsonSchema, description?: string) => ({
  name,
  in: 'path',
  required: true,
  schema,
  ...(description ? { description } : {}),
});
const macParam = pathParam('mac', MAC, 'the MAC in any common notation, any case');
const queryParams = (schema: JsonSchema) =>
  Object.entries(schema.properties as Record<string, JsonSchema>).map(([name, s]) => ({
    name,
    in: 'query',
    required: ((schema.required as string[] | undefined) ?? []).includes(name),
    schema: s,
  }));
const jsonBody = (schema: JsonSchema) => ({ required: true, content: jsonContent(schema) });
const ADMIN = { security: [{ bearer: [] }, { clientCert: [] }] };
const adminErrors = { '401': ref('Unauthenticated'), '403': ref('Forbidden') };

export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'hvnode config server',
      version: runtimeVersion(),
      description:
        'Per-MAC signed configuration bundles, boot scripts and images for stateless hvnode nodes; uploads of a ' +
        "node's /config that an admin approves. Admin routes (/v1/admin/...) need the bearer token from the data " +
        'directory or a client certificate. Errors are {"error": {"message", "hint"?}}.',
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'the admin token (DATA/keys/admin-token)' },
        clientCert: { type: 'mutualTLS', description: 'a client certificate signed by serve --client-ca' },
      },
      schemas: { Error: ERROR },
      responses: {
        BadRequest: { description: 'invalid input (the message names it)', content: jsonContent(ERROR) },
        NotFound: { description: 'no such thing', content: jsonContent(ERROR) },
        Conflict: { description: 'refused in the current state', content: jsonContent(ERROR) },
        Unauthenticated: {
          description: 'no credentials (WWW-Authenticate: Bearer)',
          content: jsonContent(ERROR),
        },
        Forbidden: {
          description: 'wrong token or untrusted client certificate',
          content: jsonContent(ERROR),
        },
        TooLarge: { description: 'request body over the limit', content: jsonContent(ERROR) },
        TooMany: {
          description: 'rate limit of this source address (Retry-After)',
          content: jsonContent(ERROR),
        },
      },
    },
    paths: {
      '/healthz': {
        get: { summary: 'liveness', responses: { '200': ok('the server answers', { type: 'object' }) } },
      },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics (text format 0.0.4)',
          responses: {
            '200': { description: 'metrics', content: { 'text/plain': { schema: { type: 'string' } } } },
          },
        },
      },
      '/v1/openapi.json': {
        get: { summary: 'this document', responses: { '200': ok('OpenAPI 3.1', { type: 'object' }) } },
      },
      '/v1/bundles/{mac}': {
        get: {
          summary: "the node's signed bundle",
          parameters: [macParam, { name: 'If-None-Match', in: 'header', schema: { type: 'string' } }],
          responses: {
            '200': {
              description: 'the signed bundle (strong ETag "sha256-<hex>")',
              headers: { ETag: { schema: { type: 'string' } } },
              content: {
                'application/octet-stream': { schema: { type: 'string', contentEncoding: 'binary' } },
              },
            },
            '304': { description: 'unchanged since the ETag given in If-None-Match' },
            '400': ref('BadRequest'),
            '404': ref('NotFound'),
          },
        },
      },
      '/v1/boot/{mac}': {
        get: {
          summary: "the node's iPXE script",
          parameters: [macParam],
          responses: {
            '200': { description: 'iPXE script', content: { 'text/plain': { schema: { type: 'string' } } } },
            '400': ref('BadRequest'),
          },
        },
      },
      '/images/{version}/http/{path}': {
        get: {
          summary: "a file of an image's http/ tree (HTTP boot)",
          parameters: [
            pathParam('version', VERSION),
            pathParam('path', { type: 'string' }, 'the file below http/ (slashes allowed; no .. segments)'),
          ],
          responses: {
            '200': { description: 'the file (Range requests supported)' },
            '404': ref('NotFound'),
          },
        },
      },
      '/v1/uploads': {
        post: {
          summary: "a node's captured /config as an unsigned bundle tar; kept pending until approved",
          parameters: queryParams(QUERY.upload),
          requestBody: {
            required: true,
            description: `at most ${LIMITS.upload} bytes`,
            content: {
              'application/octet-stream': { schema: { type: 'string', contentEncoding: 'binary' } },
            },
          },
          responses: {
            '202': ok('stored as pending', {
              type: 'object',
              properties: { id: { type: 'string' }, state: { const: 'pending' } },
            }),
            '400': ref('BadRequest'),
            '413': ref('TooLarge'),
            '429': ref('TooMany'),
          },
        },
      },
      '/v1/nodes/{mac}/status': {
        post: {
          summary: 'a node reports a step of its boot',
          parameters: [macParam],
          requestBody: jsonBody(BODY.status),
          responses: {
            '204': { description: 'stored' },
            '400': ref('BadRequest'),
            '413': ref('TooLarge'),
            '429': ref('TooMany'),
          },
        },
      },
      '/v1/admin/uploads': {
        get: {
          ...ADMIN,
          summary: 'list uploads',
          parameters: queryParams(QUERY.uploadList),
          responses: {
            '200': ok('upload records', { type: 'array' }),
            '400': ref('BadRequest'),
            ...adminErrors,
          },
        },
      },
      '/v1/admin/uploads/{id}': {
        get: {
          ...ADMIN,
          summary: 'an upload with its NodeConfig and overlay file list',
          parameters: [pathParam('id', UPLOAD_ID)],
          responses: { '200': ok('the upload', { type: 'object' }), '404': ref('NotFound'), ...adminErrors },
        },
      },
      '/v1/admin/uploads/{id}/approve': {
        post: {
          ...ADMIN,
          summary: "approve: validate, sign (encrypt to the node's key), publish as the MAC's bundle",
          parameters: [pathParam('id', UPLOAD_ID)],
          requestBody: jsonBody(BODY.approve),
          responses: {
            '200': ok('{upload, bundle}', { type: 'object' }),
            '400': ref('BadRequest'),
            '404': ref('NotFound'),
            '409': ref('Conflict'),
            ...adminErrors,
          },
        },
      },
      '/v1/admin/uploads/{id}/reject': {
        post: {
          ...ADMIN,
          summary: 'reject an upload',
          parameters: [pathParam('id', UPLOAD_ID)],
          requestBody: jsonBody(BODY.reject),
          responses: {
            '200': ok('the upload record', { type: 'object' }),
            '404': ref('NotFound'),
            '409': ref('Conflict'),
            ...adminErrors,
          },
        },
      },
      '/v1/admin/bundles': {
        get: {
          ...ADMIN,
          summary: 'list bundles',
          responses: { '200': ok('bundle records', { type: 'array' }), ...adminErrors },
        },
      },
      '/v1/admin/bundles/{mac}': {
        get: {
          ...ADMIN,
          summary: "a MAC's bundle record and bytes (base64)",
          parameters: [macParam],
          responses: {
            '200': ok('{record, data}', { type: 'object' }),
            '400': ref('BadRequest'),
            '404': ref('NotFound'),
            ...adminErrors,
          },
        },
        put: {
          ...ADMIN,
          summary: 'publish a bundle: NodeConfig + overlay, signed (optionally encrypted) by the server',
          parameters: [macParam],
          requestBody: jsonBody(BODY.bundlePut),
          responses: {
            '200': ok('the bundle record', { type: 'object' }),
            '400': ref('BadRequest'),
            '413': ref('TooLarge'),
            ...adminErrors,
          },
        },
        delete: {
          ...ADMIN,
          summary: "remove a MAC's bundle",
          parameters: [macParam],
          responses: { '200': ok('{removed}', { type: 'object' }), '400': ref('BadRequest'), ...adminErrors },
        },
      },
      '/v1/admin/images': {
        get: {
          ...ADMIN,
          summary: 'list images',
          responses: { '200': ok('images', { type: 'array' }), ...adminErrors },
        },
        post: {
          ...ADMIN,
          summary: 'add an image from an ISO at an absolute path on the server',
          requestBody: jsonBody(BODY.imageAdd),
          responses: {
            '201': ok('the image record', { type: 'object' }),
            '400': ref('BadRequest'),
            '409': ref('Conflict'),
            ...adminErrors,
          },
        },
      },
      '/v1/admin/images/{version}': {
        delete: {
          ...ADMIN,
          summary: 'remove an image (refused while used)',
          parameters: [pathParam('version', VERSION)],
          responses: {
            '200': ok('{removed}', { type: 'object' }),
            '404': ref('NotFound'),
            '409': ref('Conflict'),
            ...adminErrors,
          },
        },
      },
      '/v1/admin/images/{version}/default': {
        post: {
          ...ADMIN,
          summary: 'make an image the default',
          parameters: [pathParam('version', VERSION)],
          responses: { '200': ok('{default}', { type: 'object' }), '404': ref('NotFound'), ...adminErrors },
        },
      },
      '/v1/admin/nodes': {
        get: {
          ...ADMIN,
          summary: 'list nodes',
          responses: { '200': ok('nodes', { type: 'array' }), ...adminErrors },
        },
      },
      '/v1/admin/nodes/{mac}': {
        get: {
          ...ADMIN,
          summary: 'one node',
          parameters: [macParam],
          responses: { '200': ok('the node', { type: 'object' }), '400': ref('BadRequest'), ...adminErrors },
        },
        patch: {
          ...ADMIN,
          summary: "change a MAC's boot profile",
          parameters: [macParam],
          requestBody: jsonBody(BODY.profileChange),
          responses: {
            '200': ok('the new profile', { type: 'object' }),
            '400': ref('BadRequest'),
            '404': ref('NotFound'),
            ...adminErrors,
          },
        },
      },
      '/v1/admin/nodes/{mac}/profile': {
        delete: {
          ...ADMIN,
          summary: "remove a MAC's own boot profile",
          parameters: [macParam],
          responses: { '200': ok('{removed}', { type: 'object' }), '400': ref('BadRequest'), ...adminErrors },
        },
      },
      '/v1/admin/groups': {
        get: {
          ...ADMIN,
          summary: 'list groups',
          responses: { '200': ok('groups', { type: 'array' }), ...adminErrors },
        },
      },
      '/v1/admin/groups/{name}': {
        patch: {
          ...ADMIN,
          summary: "change or create a group's boot profile",
          parameters: [pathParam('name', GROUP)],
          requestBody: jsonBody(BODY.groupChange),
          responses: {
            '200': ok('the new profile', { type: 'object' }),
            '400': ref('BadRequest'),
            '404': ref('NotFound'),
            ...adminErrors,
          },
        },
      },
      '/v1/admin/audit': {
        get: {
          ...ADMIN,
          summary: 'the audit log, oldest first',
          parameters: queryParams(QUERY.audit),
          responses: {
            '200': ok('audit entries', { type: 'array' }),
            '400': ref('BadRequest'),
            ...adminErrors,
          },
        },
      },
      '/v1/admin/key': {
        get: {
          ...ADMIN,
          summary: "the server's signing key fingerprint and public key",
          responses: { '200': ok('{fingerprint, publicKeyPem}', { type: 'object' }), ...adminErrors },
        },
      },
    },
  };
}
