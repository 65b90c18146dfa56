// The JSON Schemas of the API's inputs (and the shapes of its answers), used by the route table
// for ajv and quoted by the OpenAPI document, so that what is checked and what is documented are
// the same objects.

import type { JsonSchema } from './validate.ts';

const obj = (properties: Record<string, JsonSchema>, required: string[] = []): JsonSchema => ({
  type: 'object',
  additionalProperties: false,
  properties,
  ...(required.length > 0 ? { required } : {}),
});

/** Any MAC notation; the handler normalises it and names a malformed one (400). */
export const MAC: JsonSchema = {
  type: 'string',
  minLength: 1,
  maxLength: 64,
  description: '52:54:00:12:34:56, 52-54-00-12-34-56, 525400123456, 5254.0012.3456 or 01-52-54-00-12-34-56',
};
export const VERSION: JsonSchema = {
  type: 'string',
  pattern: '^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$',
  description: 'an image version as `image list` shows it',
};
export const UPLOAD_ID: JsonSchema = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,128}$' };
export const GROUP: JsonSchema = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' };
const KERNEL_ARG: JsonSchema = { type: 'string', minLength: 1, maxLength: 4096, pattern: '^[^\\s\\u0000]+$' };
const BASE64: JsonSchema = { type: 'string', pattern: '^[A-Za-z0-9+/]*={0,2}$' };
const PEM: JsonSchema = { type: 'string', minLength: 1, maxLength: 16384 };

export const PARAMS = {
  mac: obj({ mac: MAC }, ['mac']),
  version: obj({ version: VERSION }, ['version']),
  id: obj({ id: UPLOAD_ID }, ['id']),
  group: obj({ name: GROUP }, ['name']),
  imageFile: obj(
    {
      version: VERSION,
      path: {
        type: 'array',
        minItems: 1,
        maxItems: 64,
        items: { type: 'string', minLength: 1, maxLength: 255 },
      },
    },
    ['version', 'path'],
  ),
};

export const QUERY = {
  upload: obj({ mac: MAC }, ['mac']),
  uploadList: obj({ state: { type: 'string', enum: ['pending', 'approved', 'rejected'] } }),
  audit: obj({ limit: { type: 'integer', minimum: 1, maximum: 100000 } }),
};

export const BODY = {
  status: obj(
    {
      step: {
        type: 'string',
        pattern: '^[a-z][a-z0-9-]{0,31}$',
        description: 'fetch, verify, apply, register, ready, ...',
      },
      state: { type: 'string', enum: ['progress', 'ok', 'waiting', 'error'] },
      message: { type: 'string', maxLength: 4096 },
    },
    ['step', 'state', 'message'],
  ),
  imageAdd: obj({ path: { type: 'string', minLength: 2, maxLength: 4096, pattern: '^/' } }, ['path']),
  profileChange: obj({
    image: { anyOf: [VERSION, { type: 'null' }] },
    args: { type: 'array', maxItems: 256, items: KERNEL_ARG },
    group: { anyOf: [GROUP, { type: 'null' }] },
  }),
  groupChange: obj({
    image: { anyOf: [VERSION, { type: 'null' }] },
    args: { type: 'array', maxItems: 256, items: KERNEL_ARG },
  }),
  bundlePut: obj(
    {
      config: { type: 'object', description: 'a NodeConfig (validated by the server)' },
      overlay: {
        type: 'array',
        maxItems: 10000,
        items: obj(
          {
            path: { type: 'string', minLength: 1, maxLength: 4096 },
            type: {
              type: 'string',
              enum: ['file', 'dir', 'symlink'],
              description: "default 'file' ('symlink' with target)",
            },
            data: { ...BASE64, description: 'a file: its content, base64' },
            mode: { type: 'integer', minimum: 0, maximum: 0o7777 },
            target: {
              type: 'string',
              minLength: 1,
              maxLength: 4096,
              description: "a symlink's target (relative)",
            },
          },
          ['path'],
        ),
      },
      encryptToPem: { ...PEM, description: 'encrypt to this node key (X25519 public key, PEM)' },
    },
    ['config'],
  ),
  approve: obj({ mac: MAC, encrypt: { type: 'boolean' } }, ['mac']),
  reject: obj({ reason: { type: 'string', minLength: 1, maxLength: 1024 } }, ['reason']),
};

/** `{"error": {"message", "hint"?, "details"?}}` */
export const ERROR: JsonSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['message'],
      properties: {
        message: { type: 'string' },
        hint: { type: 'string' },
        details: { type: 'array', items: { type: 'string' } },
      },
    },
  },
};
