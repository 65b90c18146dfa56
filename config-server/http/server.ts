// The HTTP(S) listeners of `serve`: HTTPS (asking for a client certificate when a client CA is
// given, without requiring one: the public endpoints stay reachable) and, only when asked for,
// plain HTTP. Both serve the same app; admin routes need credentials on either.

import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type express from 'express';
import { HvError } from '../../common/index.ts';

export interface Listen {
  host: string;
  port: number;
}

export interface TlsMaterial {
  certPem: string;
  keyPem: string;
  /** Client certificates signed by this CA authenticate admins. */
  clientCaPem?: string;
}

export interface Listener {
  scheme: 'http' | 'https';
  host: string;
  port: number;
  url: string;
}

export interface RunningServers {
  listeners: Listener[];
  /** Stops accepting, lets requests in flight finish (at most graceMs), then closes what is left. */
  close(graceMs?: number): Promise<void>;
}

const hostInUrl = (host: string) => (host.includes(':') ? `[${host}]` : host);

function listen(server: Server, at: Listen, what: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const hint =
        err.code === 'EADDRINUSE'
          ? 'another process listens there: give another HOST:PORT'
          : err.code === 'EACCES'
            ? 'ports below 1024 need root or CAP_NET_BIND_SERVICE'
            : err.code === 'EADDRNOTAVAIL'
              ? 'the address is not one of this machine'
              : undefined;
      reject(
        new HvError(`cannot listen on ${hostInUrl(at.host)}:${at.port}: ${err.code ?? err.message}`, {
          where: what,
          hint,
        }),
      );
    };
    server.once('error', onError);
    server.listen(at.port, at.host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

export async function startServers(
  app: express.Express,
  o: { https?: Listen & { tls: TlsMaterial }; http?: Listen },
): Promise<RunningServers> {
  const servers: Server[] = [];
  const listeners: Listener[] = [];
  const close = async (graceMs = 5000) => {
    await Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => s.closeAllConnections(), graceMs);
            timer.unref();
            s.close(() => {
              clearTimeout(timer);
              resolve();
            });
            s.closeIdleConnections();
          }),
      ),
    );
  };
  try {
    if (o.https) {
      const { tls } = o.https;
      const s = createHttpsServer(
        {
          cert: tls.certPem,
          key: tls.keyPem,
          ...(tls.clientCaPem ? { ca: tls.clientCaPem, requestCert: true, rejectUnauthorized: false } : {}),
        },
        app,
      );
      servers.push(s);
      const a = await listen(s, o.https, '--https');
      listeners.push({
        scheme: 'https',
        host: a.address,
        port: a.port,
        url: `https://${hostInUrl(a.address)}:${a.port}`,
      });
    }
    if (o.http) {
      const s = createHttpServer(app);
      servers.push(s);
      const a = await listen(s, o.http, '--http');
      listeners.push({
        scheme: 'http',
        host: a.address,
        port: a.port,
        url: `http://${hostInUrl(a.address)}:${a.port}`,
      });
    }
  } catch (err) {
    await close(0);
    throw err;
  }
  for (const s of servers) {
    // after the start, a listener error (EMFILE, ...) is reported, not fatal
    s.on('error', (err: NodeJS.ErrnoException) =>
      process.stderr.write(`hvnode-config-server: listener error: ${err.code ?? err.message}\n`),
    );
    s.keepAliveTimeout = 65_000;
    s.headersTimeout = 20_000;
    s.requestTimeout = 120_000;
  }
  return { listeners, close };
}
