// The express 5 application: the route table (routes.ts) registered with, per route, in this
// order: authentication (admin routes), the per-source rate limit (anonymous writes), the body
// with its size limit (413 beyond), ajv on path parameters, query and body, then the handler.
// Every answer is counted by route pattern and status; every error is JSON without a stack.

import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { authenticate } from './auth.ts';
import { errorResponse, HttpError } from './errors.ts';
import { type HttpContext, type Input, ROUTES, type Route } from './routes.ts';
import { check, NOTHING } from './validate.ts';

/** The client's address; IPv4-mapped IPv6 (::ffff:10.0.0.1) written as IPv4. */
export function clientAddress(req: Request): string {
  const a = req.socket.remoteAddress ?? 'unknown';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

function hasBody(req: Request): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

export interface AppOptions {
  /** Where unexpected errors (with their stack) and notable events go: the server's log. */
  log?: (line: string) => void;
}

function routeChain(ctx: HttpContext, route: Route): RequestHandler[] {
  const chain: RequestHandler[] = [];
  if (route.auth === 'admin')
    chain.push((req, res, next) => {
      res.locals.who = authenticate(req, ctx.auth);
      next();
    });
  const rate = route.rate;
  if (rate)
    chain.push((req, res, next) => {
      const r = ctx.buckets[rate].take(clientAddress(req));
      if (!r.ok)
        throw new HttpError(
          429,
          `too many requests from ${clientAddress(req)}`,
          `try again in ${r.retryAfter} s`,
          { 'Retry-After': String(r.retryAfter) },
        );
      next();
    });
  const body = route.body;
  if (body?.kind === 'binary') chain.push(express.raw({ type: () => true, limit: body.limit }));
  else if (body?.kind === 'json')
    chain.push(express.json({ type: () => true, limit: body.limit, strict: true }));
  else
    chain.push((req, _res, next) => {
      if (hasBody(req))
        throw new HttpError(400, `${route.method.toUpperCase()} ${route.path} takes no request body`);
      next();
    });
  chain.push(async (req, res) => {
    const input: Input = {
      params: check('path parameter', route.params ?? NOTHING, req.params),
      query: check('query parameter', route.query ?? NOTHING, req.query),
      body:
        body?.kind === 'json'
          ? check('body', body.schema, req.body)
          : body?.kind === 'binary'
            ? Buffer.isBuffer(req.body)
              ? req.body
              : Buffer.alloc(0)
            : undefined,
      who: (res.locals.who as string | undefined) ?? 'anonymous',
      address: clientAddress(req),
    };
    await route.handle(ctx, input, res, req);
  });
  return chain;
}

export function createApp(ctx: HttpContext, o: AppOptions = {}): express.Express {
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false); // bundles carry their own strong ETag; JSON answers need none
  app.set('query parser', 'simple');

  app.use((req, res, next) => {
    res.set('X-Content-Type-Options', 'nosniff');
    res.on('finish', () =>
      ctx.metrics.count(
        req.method,
        (res.locals.route as string | undefined) ?? '(unmatched)',
        res.statusCode,
      ),
    );
    next();
  });

  for (const route of ROUTES) {
    const label: RequestHandler = (_req, res, next) => {
      res.locals.route = route.path;
      next();
    };
    app[route.method](route.path, label, ...routeChain(ctx, route));
  }

  app.use((req: Request) => {
    throw new HttpError(404, `no such endpoint: ${req.method} ${req.path}`, 'see GET /v1/openapi.json');
  });

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const r = errorResponse(err);
    if (r.internal)
      log(
        `error: ${req.method} ${req.originalUrl}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      );
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // a refused body that was not read: close the connection rather than read megabytes
    if (r.status === 413) res.set('Connection', 'close');
    res.status(r.status).set(r.headers).json(r.body);
  });
  return app;
}
