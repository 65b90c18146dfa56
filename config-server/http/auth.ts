// Who is calling an admin endpoint: a client certificate signed by the --client-ca (HTTPS only),
// or the admin bearer token. No credentials: 401 with WWW-Authenticate; wrong ones: 403. The
// token is compared in constant time (digests of equal length, timingSafeEqual).

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { HttpError } from './errors.ts';

export const REALM = 'hvnode-config-server';

export interface AuthConfig {
  /** The admin bearer token. */
  token: string;
  /** Client certificates are asked for (HTTPS with --client-ca). */
  clientCerts: boolean;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export function tokenMatches(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** 'cert:<CN>' or 'token'; throws a 401 or 403 HttpError. */
export function authenticate(req: IncomingMessage, cfg: AuthConfig): string {
  const sock = req.socket as Partial<TLSSocket>;
  if (cfg.clientCerts && sock.encrypted && typeof sock.getPeerCertificate === 'function') {
    const cert = sock.getPeerCertificate();
    if (cert && Object.keys(cert).length > 0) {
      if (!sock.authorized)
        throw new HttpError(
          403,
          `client certificate not accepted: ${String(sock.authorizationError ?? 'not signed by the client CA')}`,
          'use a certificate signed by the CA given to serve --client-ca',
        );
      const subject = cert.subject as unknown as Record<string, string | string[]> | undefined;
      const cn = subject?.CN;
      return `cert:${(Array.isArray(cn) ? cn[0] : cn) ?? '(no CN)'}`;
    }
  }
  const header = req.headers.authorization;
  const challenge = { 'WWW-Authenticate': `Bearer realm="${REALM}"` };
  if (header === undefined || header.trim() === '')
    throw new HttpError(
      401,
      'authentication required',
      `send "Authorization: Bearer TOKEN" (the token is in the data directory's admin token file)${cfg.clientCerts ? ' or a client certificate' : ''}`,
      challenge,
    );
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  if (!m)
    throw new HttpError(
      401,
      'unsupported Authorization scheme',
      'send "Authorization: Bearer TOKEN"',
      challenge,
    );
  if (!tokenMatches(m[1] as string, cfg.token))
    throw new HttpError(403, 'wrong admin token', undefined, {
      'WWW-Authenticate': `Bearer realm="${REALM}", error="invalid_token"`,
    });
  return 'token';
}
