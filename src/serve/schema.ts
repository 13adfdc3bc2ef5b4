// The API's JSON schemas (TypeBox: one definition gives fastify's validation, the TypeScript types and the
// OpenAPI file at /api/openapi.json). Bounds are the CLI's flags' bounds (src/cli/generate.ts).
import { Type, type Static } from 'typebox';
import { SAMPLER_NAMES, DEFAULT_SAMPLER, type SamplerName } from '../diffusion/samplers.ts';

export const LIMITS = {
  steps: 1000,
  n: 64,
  guidance: 100,
  seed: 2 ** 48,
  segments: 64,
  textChars: 10_000,
  pageSize: 100,
};
export const DEFAULTS = { steps: 50, guidance: 6, n: 1, sampler: DEFAULT_SAMPLER };

export const Segment = Type.Object(
  {
    text: Type.Optional(
      Type.String({ maxLength: LIMITS.textChars, description: 'text, taken literally (no <img:...> tags are read)' }),
    ),
    image: Type.Optional(
      Type.String({ description: 'an image (PNG, JPEG, WebP, GIF, TIFF, AVIF) as base64 or a base64 data: URL' }),
    ),
    upload: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9_.-]{1,64}$',
        description: 'multipart requests: the name of the file part that holds this image',
      }),
    ),
  },
  {
    additionalProperties: false,
    minProperties: 1,
    maxProperties: 1,
    description: 'exactly one of text, image, upload',
  },
);

const Prompt = Type.Array(Segment, { maxItems: LIMITS.segments });

// the sampler registry's names (src/diffusion/samplers.ts)
export const Sampler = Type.Unsafe<SamplerName>(Type.Union(SAMPLER_NAMES.map((n) => Type.Literal(n))));

export function generationRequest(maxSteps: number) {
  return Type.Object(
    {
      prompt: Prompt,
      negativePrompt: Type.Optional(Prompt),
      steps: Type.Optional(
        Type.Integer({ minimum: 1, maximum: Math.min(LIMITS.steps, maxSteps), default: DEFAULTS.steps }),
      ),
      guidance: Type.Optional(Type.Number({ minimum: 0, maximum: LIMITS.guidance, default: DEFAULTS.guidance })),
      seed: Type.Optional(
        Type.Integer({ minimum: 0, maximum: LIMITS.seed, description: 'default: random (stored with the job)' }),
      ),
      n: Type.Optional(
        Type.Integer({
          minimum: 1,
          maximum: LIMITS.n,
          default: DEFAULTS.n,
          description: 'images, made in one batch; image i uses seed + i',
        }),
      ),
      sampler: Type.Optional(Sampler),
    },
    { additionalProperties: false },
  );
}
export type GenerationRequest = Static<ReturnType<typeof generationRequest>>;

// multipart/form-data: the same request as JSON in the `request` field, images as file parts named by `upload`
export const MultipartRequest = Type.Object(
  {
    request: Type.String({
      description: 'the GenerationRequest as JSON; its { upload: NAME } segments name the file parts below',
    }),
  },
  { additionalProperties: true, description: 'plus one file part per upload name' },
);

const ViewSegment = Type.Object(
  {
    text: Type.Optional(Type.String()),
    image: Type.Optional(Type.String({ description: 'URL of the stored reference' })),
  },
  { additionalProperties: false },
);

export const JobView = Type.Object(
  {
    id: Type.String(),
    state: Type.Union([
      Type.Literal('queued'),
      Type.Literal('running'),
      Type.Literal('done'),
      Type.Literal('failed'),
      Type.Literal('cancelled'),
    ]),
    progress: Type.Optional(Type.Object({ step: Type.Integer(), steps: Type.Integer() })),
    error: Type.Optional(Type.String()),
    createdAt: Type.String({ format: 'date-time' }),
    startedAt: Type.Optional(Type.String({ format: 'date-time' })),
    finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
    seconds: Type.Optional(Type.Number()),
    model: Type.String(),
    settings: Type.Object({
      steps: Type.Integer(),
      guidance: Type.Number(),
      seed: Type.Integer(),
      n: Type.Integer(),
      sampler: Sampler,
    }),
    prompt: Type.Array(ViewSegment),
    negativePrompt: Type.Array(ViewSegment),
    images: Type.Array(Type.String({ description: 'URL of a result PNG' })),
    events: Type.String({ description: 'URL of the server-sent event stream' }),
  },
  { additionalProperties: false },
);
export type JobView = Static<typeof JobView>;

export const JobPage = Type.Object({
  items: Type.Array(JobView),
  next: Type.Union([Type.String(), Type.Null()], {
    description: 'pass as ?before= for the next page; null on the last',
  }),
});

export const GalleryQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: LIMITS.pageSize, default: 20 })),
    before: Type.Optional(Type.String({ pattern: '^[0-9a-z]{9}-[0-9a-f]{6}$' })),
  },
  { additionalProperties: false },
);

export const JobParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-z]{9}-[0-9a-f]{6}$' }) });
export const ImageParams = Type.Object({
  id: JobParams.properties.id,
  k: Type.String({ pattern: '^[0-9]{1,2}\\.png$', description: 'k.png, k from 1' }),
});
export const ReferenceParams = Type.Object({
  id: JobParams.properties.id,
  name: Type.String({ pattern: '^(prompt|negative)-[0-9]{1,2}\\.png$' }),
});

export const ErrorBody = Type.Object({ error: Type.String({ description: 'one line' }) });

export const ModelView = Type.Object({
  name: Type.String(),
  maxImages: Type.Integer({ description: 'images per prompt (the negative prompt has its own allowance)' }),
  tokensPerImage: Type.Integer(),
  referenceSize: Type.Integer({
    description: 'references are padded to a square with black and resized to this side (px)',
  }),
  output: Type.Object({ width: Type.Integer(), height: Type.Integer() }),
  limits: Type.Object({
    steps: Type.Integer(),
    n: Type.Integer(),
    guidance: Type.Number(),
    seed: Type.Integer(),
    uploadBytes: Type.Integer(),
    uploadPixels: Type.Integer(),
    bodyBytes: Type.Integer(),
  }),
  defaults: Type.Object({ steps: Type.Integer(), guidance: Type.Number(), n: Type.Integer(), sampler: Sampler }),
});

export const Health = Type.Object({
  status: Type.Literal('ok'),
  model: Type.String(),
  running: Type.Union([Type.String(), Type.Null()]),
  queued: Type.Integer(),
  queueCapacity: Type.Integer(),
  jobs: Type.Integer({ description: 'jobs on disk' }),
  uptimeSeconds: Type.Number(),
});

export const SessionBody = Type.Object({ token: Type.String({ maxLength: 1024 }) }, { additionalProperties: false });
