// `mumu serve`'s HTTP side (fastify): the JSON API under /api, its OpenAPI file, the event streams and the web page.
// Generation itself runs in another process (runner.ts -> worker.ts), so this event loop stays free to answer
// health checks, stream progress, refuse with 429 and cancel.
import { readFile } from 'node:fs/promises';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import cookie from '@fastify/cookie';
import cors from '@fastify/cors';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { Ajv } from 'ajv';
import { MAX_INPUT_PIXELS } from '../prompt/image.ts';
import { JobStore, FINISHED, type JobRecord, type Retention } from './jobs.ts';
import { GenerationQueue, QueueFullError } from './runner.ts';
import type { ModelInfo } from './protocol.ts';
import { HttpError, parseGeneration, splitMultipart } from './uploads.ts';
import { COOKIE, addGuards, setErrorHandler, tokenCheck } from './guards.ts';
import { imageUrl, jobUrl, referenceUrl } from './segments.ts';
import { buildPage } from './page.ts';
import {
  DEFAULTS,
  LIMITS,
  ErrorBody,
  GalleryQuery,
  Health,
  ImageParams,
  JobPage,
  JobParams,
  JobView,
  ModelView,
  MultipartRequest,
  ReferenceParams,
  SessionBody,
  generationRequest,
  type GenerationRequest,
} from './schema.ts';

export interface ServeOptions {
  modelDir: string;
  modelName: string;
  device?: string;
  host: string;
  port: number;
  token?: string;
  cors?: string;
  queue: number;
  out: string;
  retention: Retention;
  uploadBytes?: number; // per image; the request body may be 4x this plus 1 MiB
}

export const DEFAULT_UPLOAD_BYTES = 16 * 2 ** 20;

export interface RunningServer {
  url: string;
  app: FastifyInstance;
  store: JobStore;
  queue: GenerationQueue;
  loadSeconds: number;
  recovered: number;
  close(): Promise<void>;
}

export async function startServer(o: ServeOptions): Promise<RunningServer> {
  const uploadBytes = o.uploadBytes ?? DEFAULT_UPLOAD_BYTES;
  const { store, recovered } = await JobStore.open(o.out, o.retention);
  const queue = new GenerationQueue(store, o.queue, {
    modelDir: o.modelDir,
    modelName: o.modelName,
    device: o.device ?? 'cpu',
  });
  const [{ model, loadSeconds }, page] = await Promise.all([queue.start(), buildPage()]);
  try {
    return await serveWith(o, store, queue, model, loadSeconds, recovered, page, uploadBytes);
  } catch (e) {
    await queue.stop(); // or the generation process would keep this process alive after the error
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE')
      throw new Error(`port ${o.port} on ${o.host} is in use (another mumu serve?): pick another with --port`);
    throw e;
  }
}

async function serveWith(
  o: ServeOptions,
  store: JobStore,
  queue: GenerationQueue,
  model: ModelInfo,
  loadSeconds: number,
  recovered: number,
  page: Awaited<ReturnType<typeof buildPage>>,
  uploadBytes: number,
): Promise<RunningServer> {
  const bodyBytes = uploadBytes * 4 + 2 ** 20;
  const started = Date.now();

  // removeAdditional off: an unknown field is a 400 (a typo such as "step" must not silently mean the default)
  const app = Fastify({
    bodyLimit: bodyBytes,
    logger: false,
    forceCloseConnections: true,
    ajv: { customOptions: { removeAdditional: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.removeContentTypeParser('text/plain');
  await app.register(cookie);
  await app.register(multipart, {
    attachFieldsToBody: 'keyValues',
    limits: {
      fileSize: uploadBytes,
      files: 2 * model.maxImages,
      fields: 1,
      fieldSize: bodyBytes,
      parts: 2 * model.maxImages + 1,
    },
  });
  if (o.cors)
    await app.register(cors, { origin: [o.cors], credentials: true, methods: ['GET', 'POST', 'DELETE'], maxAge: 600 });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'mumu serve',
        version: '1',
        description:
          'Image generation from multimodal prompts: text segments interleaved with image segments. Jobs run one at a time; ' +
          'POST returns at once (202) and the job is followed by polling or by its server-sent event stream.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'with --token: Authorization: Bearer TOKEN' },
          cookie: {
            type: 'apiKey',
            in: 'cookie',
            name: COOKIE,
            description: 'set by POST /api/session (the web page)',
          },
        },
      },
      ...(o.token ? { security: [{ bearer: [] }, { cookie: [] }] } : {}),
    },
  });

  // --- security (DNS-rebinding guard, cross-origin writes, the token) and errors (always { error: one line }) ----
  const token = tokenCheck(o.token);
  addGuards(app, o, token);
  setErrorHandler(app, { uploadBytes, bodyBytes, maxImages: model.maxImages });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no such resource: ${req.method} ${req.url}` }));

  // --- views ----------------------------------------------------------------------------------------------------
  const view = (j: JobRecord): JobView => {
    const seg = (s: JobRecord['prompt'][number]) =>
      'text' in s ? { text: s.text } : { image: referenceUrl(j.id, s.reference) };
    const progress = j.state === 'running' ? store.progressOf(j.id) : undefined;
    return {
      id: j.id,
      state: j.state,
      ...(progress ? { progress } : {}),
      ...(j.error ? { error: j.error } : {}),
      createdAt: j.createdAt,
      ...(j.startedAt ? { startedAt: j.startedAt } : {}),
      ...(j.finishedAt ? { finishedAt: j.finishedAt } : {}),
      ...(j.seconds !== undefined ? { seconds: j.seconds } : {}),
      model: j.model,
      settings: j.settings,
      prompt: j.prompt.map(seg),
      negativePrompt: j.negativePrompt.map(seg),
      images: j.images.map((f) => imageUrl(j.id, f)),
      events: `${jobUrl(j.id)}/events`,
    };
  };
  const jobOr404 = (id: string) => {
    const job = store.get(id);
    if (!job) throw new HttpError(404, `no generation '${id}' (never made, deleted, or past the retention limit)`);
    return job;
  };
  const err = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 413: ErrorBody, 429: ErrorBody };

  // --- the page -------------------------------------------------------------------------------------------------
  const csp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
  for (const [path, file] of Object.entries(page)) {
    app.get(path, { schema: { hide: true } }, (_req, reply) =>
      reply.type(file.type).header('content-security-policy', csp).header('cache-control', 'no-cache').send(file.body),
    );
  }

  // --- API ------------------------------------------------------------------------------------------------------
  app.get('/api/openapi.json', { schema: { hide: true } }, () => app.swagger());

  app.get(
    '/api/health',
    { schema: { summary: 'Liveness and the queue', tags: ['server'], response: { 200: Health, 401: ErrorBody } } },
    () => ({
      status: 'ok' as const,
      model: model.name,
      running: queue.status.running,
      queued: queue.status.waiting,
      queueCapacity: queue.capacity,
      jobs: store.size,
      uptimeSeconds: (Date.now() - started) / 1000,
    }),
  );

  app.get(
    '/api/model',
    {
      schema: {
        summary: 'What the loaded model accepts',
        tags: ['server'],
        response: { 200: ModelView, 401: ErrorBody },
      },
    },
    () => ({
      name: model.name,
      maxImages: model.maxImages,
      tokensPerImage: model.tokensPerImage,
      referenceSize: model.referenceSize,
      output: model.output,
      limits: {
        steps: Math.min(LIMITS.steps, model.maxSteps),
        n: LIMITS.n,
        guidance: LIMITS.guidance,
        seed: LIMITS.seed,
        uploadBytes,
        uploadPixels: MAX_INPUT_PIXELS,
        bodyBytes,
      },
      defaults: DEFAULTS,
    }),
  );

  app.post(
    '/api/session',
    {
      schema: {
        summary:
          'Sign in with the token: sets an HttpOnly, SameSite=Strict cookie (for the page, its event streams and image URLs)',
        tags: ['server'],
        body: SessionBody,
        response: { 204: Type.Null(), 401: ErrorBody },
      },
    },
    async (req, reply) => {
      if (!token.required) return reply.code(204).send(null); // no token to keep
      if (!token.ok(req.body.token)) return reply.code(401).send({ error: 'wrong token' });
      return reply
        .setCookie(COOKIE, req.body.token, { httpOnly: true, sameSite: 'strict', path: '/' })
        .code(204)
        .send(null);
    },
  );

  // Request bodies are validated without fastify's type coercion (which would turn "prompt": "text" into ["text"]
  // and "steps": "5" into 5): JSON clients must send the types the schema says.
  const strict = new Ajv({ coerceTypes: false, useDefaults: false, removeAdditional: false, allErrors: false });
  const RequestSchema = generationRequest(model.maxSteps);
  const checkRequest = strict.compile(RequestSchema);
  const validateRequest = (v: unknown): string | null => {
    if (checkRequest(v)) return null;
    const e = checkRequest.errors?.[0];
    return e ? `request${e.instancePath} ${e.message}` : 'the request is not valid';
  };

  app.post(
    '/api/generations',
    {
      validatorCompiler: ({ schema }) => strict.compile(schema),
      schema: {
        summary: 'Submit a generation; answers 202 with the queued job at once',
        description:
          'JSON (images as base64), or multipart/form-data with the same JSON in a `request` field and the images as file parts named by `{ upload }` segments. ' +
          'Text segments are taken literally. A full queue answers 429 with Retry-After.',
        tags: ['generations'],
        body: {
          content: {
            'application/json': { schema: RequestSchema },
            'multipart/form-data': { schema: MultipartRequest },
          },
        },
        response: { 202: JobView, ...err },
      },
    },
    async (req, reply) => {
      let request: GenerationRequest,
        files = new Map<string, Buffer>();
      if (req.isMultipart())
        ({ request, files } = splitMultipart(req.body as Record<string, unknown>, validateRequest));
      else request = req.body as GenerationRequest;
      const refuse = (e: QueueFullError) =>
        reply
          .code(429)
          .header('retry-after', String(e.retryAfterSeconds))
          .send({ error: `${e.message} (${queue.capacity} jobs waiting)` });
      try {
        queue.checkRoom(); // refused before any image is decoded
      } catch (e) {
        if (e instanceof QueueFullError) return refuse(e);
        throw e;
      }
      const parsed = await parseGeneration(request, files, { maxImages: model.maxImages, uploadBytes });
      const job = await store.create(
        { model: model.name, settings: parsed.settings, prompt: parsed.prompt, negativePrompt: parsed.negativePrompt },
        parsed.refs,
      );
      try {
        queue.enqueue(job);
      } catch (e) {
        await store.remove(job.id); // the queue filled while the images were stored
        if (e instanceof QueueFullError) return refuse(e);
        throw e;
      }
      return reply.code(202).header('location', jobUrl(job.id)).send(view(job));
    },
  );

  app.get(
    '/api/generations',
    {
      schema: {
        summary: 'The gallery: jobs newest first, paged',
        tags: ['generations'],
        querystring: GalleryQuery,
        response: { 200: JobPage, ...err },
      },
    },
    (req) => {
      const { jobs, next } = store.list(req.query.limit ?? 20, req.query.before);
      return { items: jobs.map(view), next };
    },
  );

  app.get(
    '/api/generations/:id',
    {
      schema: {
        summary:
          'One job: state (queued, running with progress, done, failed with the message, cancelled), settings, URLs',
        tags: ['generations'],
        params: JobParams,
        response: { 200: JobView, ...err },
      },
    },
    (req) => view(jobOr404(req.params.id)),
  );

  app.delete(
    '/api/generations/:id',
    {
      schema: {
        summary:
          'Cancel a queued (200) or running (202: it stops after the current sampling step) job; delete a finished one and its files (204)',
        tags: ['generations'],
        params: JobParams,
        response: { 200: JobView, 202: JobView, 204: Type.Null(), ...err },
      },
    },
    async (req, reply) => {
      const job = jobOr404(req.params.id);
      const r = await queue.cancel(job.id);
      if (r === 'cancelled') return reply.code(200).send(view(store.get(job.id)!));
      if (r === 'cancelling') return reply.code(202).send(view(job));
      await store.remove(job.id);
      store.emit('removed', job.id);
      return reply.code(204).send(null);
    },
  );

  const sendFile = async (reply: FastifyReply, file: string, download: string) =>
    reply
      .type('image/png')
      .header('cache-control', 'private, max-age=31536000, immutable')
      .header('content-disposition', `inline; filename="${download}"`)
      .send(await readFile(file));

  app.get(
    '/api/generations/:id/images/:k',
    {
      schema: {
        summary: 'Result image k (1-based) as PNG, with the settings in its metadata',
        tags: ['generations'],
        params: ImageParams,
      },
    },
    async (req, reply) => {
      const job = jobOr404(req.params.id);
      const k = Number.parseInt(req.params.k, 10);
      const file = job.images.includes(`${k}.png`) ? store.hasFile(job.id, 'images', `${k}.png`) : null;
      if (!file)
        throw new HttpError(
          404,
          `generation '${job.id}' has no image ${k}${job.state !== 'done' ? ` (it is ${job.state})` : ''}`,
        );
      return sendFile(reply, file, `mumu-${job.id}-${k}.png`);
    },
  );

  app.get(
    '/api/generations/:id/references/:name',
    {
      schema: {
        summary: 'A stored reference image of the job (as PNG), so the result can be reproduced',
        tags: ['generations'],
        params: ReferenceParams,
      },
    },
    async (req, reply) => {
      const job = jobOr404(req.params.id);
      const file = store.hasFile(job.id, 'refs', req.params.name);
      if (!file) throw new HttpError(404, `generation '${job.id}' has no reference ${req.params.name}`);
      return sendFile(reply, file, `mumu-${job.id}-${req.params.name}`);
    },
  );

  // --- server-sent events ---------------------------------------------------------------------------------------
  const streams = new Set<() => void>();
  app.get(
    '/api/generations/:id/events',
    {
      schema: {
        summary:
          'Server-sent events: `state` (the job, now and on every change) and `progress` ({ step, steps }, per sampling step); ends when the job ends',
        tags: ['generations'],
        params: JobParams,
        response: {
          200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: Type.String() } } },
          404: ErrorBody,
        },
      },
    },
    (req, reply) => {
      const job = jobOr404(req.params.id);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        ...(reply.getHeaders() as Record<string, string>),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
      });
      const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      send('state', view(job));
      if (FINISHED.includes(job.state)) return void res.end();
      const onUpdate = (j: JobRecord) => {
        if (j.id !== job.id) return;
        send('state', view(j));
        if (FINISHED.includes(j.state)) close();
      };
      const onProgress = (id: string, p: { step: number; steps: number }) => id === job.id && send('progress', p);
      const onRemoved = (id: string) => id === job.id && close();
      const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
      let closed = false;
      function close() {
        if (closed) return;
        closed = true;
        store.off('update', onUpdate).off('progress', onProgress).off('removed', onRemoved);
        clearInterval(heartbeat);
        streams.delete(close);
        res.end();
      }
      store.on('update', onUpdate).on('progress', onProgress).on('removed', onRemoved);
      res.on('close', close); // the client went away (a request's own 'close' fires once its body is read)
      streams.add(close);
    },
  );

  await app.listen({ host: o.host, port: o.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  const url = `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`;
  return {
    url,
    app,
    store,
    queue,
    loadSeconds,
    recovered,
    async close() {
      await queue.stop(); // first: the running and waiting jobs end failed, and their event streams say so
      for (const close of [...streams]) close();
      await app.close();
    },
  };
}
