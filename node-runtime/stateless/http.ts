// A small HTTP(S) client on node:http / node:https (the node runs Node 18, whose fetch cannot be
// told which certificates to accept). Bodies are bounded; every request has a deadline.

import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface HttpOptions {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Milliseconds for the whole exchange (default 30 s). */
  timeoutMs?: number;
  /** Refuse a response body larger than this (default 96 MiB). */
  maxBytes?: number;
  /**
   * TLS: `verify` checks the certificate against the system's CAs (the default); `{ca}` against
   * that CA only (the engine's, once it is trusted); `insecure` accepts any certificate. Use
   * `insecure` only where the content is authenticated otherwise (a signed bundle).
   */
  tls?: 'verify' | 'insecure' | { ca: string };
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text(): string;
  /** The address this end of the connection had (what the server saw us as). */
  localAddress?: string;
}

/** One request; rejects on a network error or timeout (the message names the URL), never on a status. */
export function fetchUrl(url: string, o: HttpOptions = {}): Promise<HttpResponse> {
  const u = new URL(url);
  const secure = u.protocol === 'https:';
  if (!secure && u.protocol !== 'http:') return Promise.reject(new Error(`${url}: not an http(s) URL`));
  const tls = o.tls ?? 'verify';
  const maxBytes = o.maxBytes ?? 96 * 1024 * 1024;
  const body = o.body === undefined ? undefined : Buffer.from(o.body);
  return new Promise((resolve, reject) => {
    const options = {
      method: o.method ?? 'GET',
      headers: { ...(o.headers ?? {}), ...(body ? { 'Content-Length': String(body.length) } : {}) },
      timeout: o.timeoutMs ?? 30_000,
      ...(secure && tls === 'insecure' ? { rejectUnauthorized: false } : {}),
      ...(secure && typeof tls === 'object' ? { ca: tls.ca } : {}),
    };
    const req = (secure ? httpsRequest : httpRequest)(u, options, (res) => {
      const local = res.socket?.localAddress;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) {
          req.destroy(new Error(`${url}: the answer is larger than ${maxBytes} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => {
        const data = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: data,
          text: () => data.toString('utf8'),
          ...(local ? { localAddress: local.replace(/^::ffff:/, '') } : {}),
        });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer within ${options.timeout / 1000} s`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      const what = err.code === 'ECONNREFUSED' ? 'connection refused' : err.message;
      reject(new Error(err.message.startsWith(url) ? err.message : `${u.origin}: ${what}`));
    });
    req.end(body);
  });
}

/** The error message of a JSON error answer (`{"error":{"message"}}`), or the start of the text. */
export function answerMessage(res: HttpResponse): string {
  const text = res.text();
  try {
    const j = JSON.parse(text) as { error?: { message?: string } };
    if (j.error?.message) return j.error.message;
  } catch {
    // not JSON
  }
  return text.trim().split('\n')[0]?.slice(0, 200) || '(no message)';
}
