// What an HTTP client gets when a request fails: `{"error": {"message", "hint"?}}` with a status
// that says whose fault it is. Never a stack trace: an unexpected error is logged by the server
// and answered with a plain 500.

import { ExitCode, HvError } from '../../common/index.ts';

/** A failure with its HTTP status (thrown by handlers and middleware). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly hint?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const badRequest = (message: string, hint?: string) => new HttpError(400, message, hint);
export const notFound = (message: string, hint?: string) => new HttpError(404, message, hint);

export interface ErrorBody {
  error: { message: string; hint?: string; details?: string[] };
}

/** HvErrors whose message says the thing is not there (an unknown upload, image, bundle ...). */
const NOT_FOUND = /\b(?:no such|not found|unknown (?:upload|image|bundle|group|node|mac))\b/i;
/** HvErrors that refuse a change because of the current state (an upload decided twice ...). */
const CONFLICT = /\b(?:already|in use|is used by|still used)\b/i;

/** The status and JSON body for an error; `internal` is true when it is the server's fault. */
export function errorResponse(err: unknown): {
  status: number;
  body: ErrorBody;
  headers: Record<string, string>;
  internal: boolean;
} {
  if (err instanceof HttpError)
    return {
      status: err.status,
      body: { error: { message: err.message, ...(err.hint ? { hint: err.hint } : {}) } },
      headers: err.headers,
      internal: false,
    };
  if (err instanceof HvError && err.exitCode !== ExitCode.software) {
    const message = err.where ? `${err.where}: ${err.message}` : err.message;
    const details = err.diagnostics.map(
      (d) => `${[d.file, d.path].filter(Boolean).join(' ')}${d.file || d.path ? ': ' : ''}${d.message}`,
    );
    let status = 400;
    if (NOT_FOUND.test(err.message)) status = 404;
    else if (CONFLICT.test(err.message)) status = 409;
    else if (err.exitCode === ExitCode.failure || err.exitCode === ExitCode.precondition) status = 500;
    return {
      status,
      body: {
        error: {
          message,
          ...(err.hint ? { hint: err.hint } : {}),
          ...(details.length > 0 ? { details } : {}),
        },
      },
      headers: {},
      internal: status >= 500,
    };
  }
  // body-parser / http-errors: a client error carries its own status
  const e = err as { status?: unknown; type?: unknown; expose?: unknown; message?: unknown };
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
    const message =
      e.type === 'entity.too.large'
        ? 'request body too large'
        : e.type === 'entity.parse.failed'
          ? 'request body is not valid JSON'
          : e.expose && typeof e.message === 'string'
            ? e.message
            : 'bad request';
    return { status: e.status, body: { error: { message } }, headers: {}, internal: false };
  }
  return {
    status: 500,
    body: { error: { message: 'internal error', hint: 'the server log has the details' } },
    headers: {},
    internal: true,
  };
}
