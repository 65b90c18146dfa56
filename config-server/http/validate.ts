// ajv on every input of every route: path parameters, query and JSON body each have a schema in
// the route table (an absent schema means "none allowed"). A violation is a 400 that names the
// input and the field.

import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { describeSchemaError } from '../../common/index.ts';
import { badRequest } from './errors.ts';

export type JsonSchema = Record<string, unknown>;

/** An object schema that admits nothing (no query parameters, no path parameters). */
export const NOTHING: JsonSchema = { type: 'object', additionalProperties: false, properties: {} };

// query strings and path parameters are text: numbers and booleans in them are coerced
const textAjv = new Ajv({ allErrors: true, strict: true, coerceTypes: true });
const jsonAjv = new Ajv({ allErrors: true, strict: true });
const compiled = new Map<JsonSchema, ValidateFunction>();

function compile(schema: JsonSchema, coerce: boolean): ValidateFunction {
  let v = compiled.get(schema);
  if (!v) {
    v = (coerce ? textAjv : jsonAjv).compile(schema);
    compiled.set(schema, v);
  }
  return v;
}

export type InputPart = 'path parameter' | 'query parameter' | 'body';

function describe(part: InputPart, e: ErrorObject): string {
  const field = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  const what = part === 'body' ? (field ? `body field "${field}"` : 'body') : `${part} "${field}"`;
  if (e.keyword === 'additionalProperties') {
    const extra = (e.params as { additionalProperty: string }).additionalProperty;
    return part === 'body'
      ? `${field ? `body field "${field}"` : 'body'}: unknown key "${extra}"`
      : `unknown ${part} "${extra}"`;
  }
  if (e.keyword === 'required' && part !== 'body')
    return `missing ${part} "${(e.params as { missingProperty: string }).missingProperty}"`;
  return `${what} ${describeSchemaError(e)}`;
}

/** Validates (and for text parts coerces) `value` against `schema`; returns it or throws a 400. */
export function check<T>(part: InputPart, schema: JsonSchema, value: unknown): T {
  const coerce = part !== 'body';
  // the query object may be a getter's fresh copy or have a null prototype: validate a plain copy
  const data = coerce ? { ...(value as object) } : value;
  const validate = compile(schema, coerce);
  if (!validate(data)) {
    const errors = (validate.errors ?? []).slice(0, 5).map((e) => describe(part, e));
    throw badRequest(
      errors.join('; '),
      part === 'body' ? 'see GET /v1/openapi.json for the schema' : undefined,
    );
  }
  return data as T;
}
