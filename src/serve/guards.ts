// The checks every request meets before a route (a DNS-rebinding guard, refused cross-origin writes, the token) and
// the one error handler behind every route: whatever fails, the client gets its status and { error: one line }.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { drainBody, formatBytes } from './uploads.ts';

export const COOKIE = 'mumu_token';
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);
export const isLoopback = (host: string) => LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
const oneLine = (s: string) => s.split('\n')[0]!;
const sha = (s: string) => createHash('sha256').update(s).digest();

// The server's token, compared in constant time; `required` is false when the server was started without one.
export function tokenCheck(token: string | undefined) {
  const expected = token ? sha(token) : null;
  return {
    required: expected !== null,
    ok: (v: string | undefined) => expected !== null && v !== undefined && timingSafeEqual(sha(v), expected),
  };
}

export function addGuards(
  app: FastifyInstance,
  o: { host: string; cors?: string },
  token: ReturnType<typeof tokenCheck>,
): void {
  const authorized = (req: FastifyRequest) =>
    !token.required ||
    token.ok(/^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1]) ||
    token.ok(req.cookies[COOKIE]);
  const loopbackOnly = isLoopback(o.host);
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    const host = req.headers.host ?? '';
    const hostname = host.replace(/:\d+$/, '');
    // a page on another site that resolves its own name to 127.0.0.1 must not reach this server (DNS rebinding)
    if (loopbackOnly && !isLoopback(hostname) && hostname !== o.host) {
      return reply
        .code(403)
        .send({ error: `Host '${host}' refused: this server answers to 127.0.0.1 and localhost only` });
    }
    const origin = req.headers.origin;
    if (
      origin &&
      req.method !== 'GET' &&
      req.method !== 'HEAD' &&
      req.method !== 'OPTIONS' &&
      origin !== `http://${host}` &&
      origin !== o.cors
    ) {
      return reply.code(403).send({
        error: `cross-origin request from ${origin} refused (start the server with --cors ${origin} to allow one)`,
      });
    }
    const open =
      !req.url.startsWith('/api/') || req.method === 'OPTIONS' || (req.url === '/api/session' && req.method === 'POST');
    if (!open && !authorized(req)) {
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer')
        .send({ error: 'this server needs its token: send Authorization: Bearer TOKEN, or sign in on the page' });
    }
  });
}

export function setErrorHandler(
  app: FastifyInstance,
  limits: { uploadBytes: number; bodyBytes: number; maxImages: number },
): void {
  const { uploadBytes, bodyBytes } = limits;
  app.setErrorHandler(
    async (err: Error & { statusCode?: number; code?: string; validationContext?: string }, req, reply) => {
      let status = err.statusCode ?? 500;
      let msg = err.message;
      if (err.validationContext === 'params') [status, msg] = [404, `no such resource: ${req.url}`];
      else if (err.code === 'FST_REQ_FILE_TOO_LARGE')
        msg = `an uploaded file is over the ${formatBytes(uploadBytes)} limit per image`;
      else if (err.code === 'FST_FILES_LIMIT')
        msg = `more files than this model takes (${limits.maxImages} per prompt, ${2 * limits.maxImages} in all)`;
      else if (err.code === 'FST_PARTS_LIMIT' || err.code === 'FST_FIELDS_LIMIT')
        msg = "too many multipart parts: one 'request' field plus one file per upload";
      else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
        msg = `the request body is over the ${formatBytes(bodyBytes)} limit`;
        await drainBody(req.raw, 16 * bodyBytes);
        reply.header('connection', 'close');
      } else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
        msg = `content type '${req.headers['content-type'] ?? ''}' is not accepted: send application/json or multipart/form-data`;
      else if (err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') msg = 'the JSON body is empty';
      else if (status === 400 && err instanceof SyntaxError) msg = `the body is not valid JSON (${err.message})`;
      if (status >= 500) process.stderr.write(`mumu serve: ${req.method} ${req.url}: ${err.stack ?? err.message}\n`);
      return reply.code(status).send({ error: oneLine(status >= 500 ? `internal error: ${msg}` : msg) });
    },
  );
}
