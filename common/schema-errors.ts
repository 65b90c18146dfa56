// One wording for JSON Schema (ajv) violations, whatever input they are about (a build
// profile, a NodeConfig, a bundle).

import type { ErrorObject } from 'ajv';

/** `unknown key "x"`, `must be one of "a", "b"`, ...; with `showPattern` the expected regex is named. */
export function describeSchemaError(e: ErrorObject, showPattern = false): string {
  switch (e.keyword) {
    case 'additionalProperties':
      return `unknown key "${(e.params as { additionalProperty: string }).additionalProperty}"`;
    case 'required':
      return `missing required key "${(e.params as { missingProperty: string }).missingProperty}"`;
    case 'enum':
      return `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'pattern':
      return showPattern
        ? `has an invalid form (expected ${(e.params as { pattern: string }).pattern})`
        : 'has an invalid form';
    default:
      return e.message ?? e.keyword;
  }
}
