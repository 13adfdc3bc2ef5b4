// POST /api/generations bodies -> a job's stored prompts and reference PNGs. Every image is checked here, before
// the job is accepted, with the CLI's checks and messages (src/prompt/image.ts: empty, unreadable, zero-sized, over
// the megapixel limit; the model's image count), so a bad upload is a 400 with one line, never a failed job.
import sharp from 'sharp';
import { checkImage, MAX_INPUT_PIXELS } from '../prompt/image.ts';
import { PromptError } from '../prompt/parse.ts';
import { DEFAULTS, type GenerationRequest } from './schema.ts';
import type { JobSettings, StoredSegment } from './protocol.ts';

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

export interface ParsedRequest {
  settings: JobSettings;
  prompt: StoredSegment[];
  negativePrompt: StoredSegment[];
  refs: Map<string, Buffer>; // server-made name -> PNG
}

export interface UploadLimits {
  maxImages: number;
  uploadBytes: number;
}

const DATA_URL = /^data:[a-z0-9.+/-]*(;[a-z0-9=-]+)*;base64,/i;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
// 16 MiB, 1.5 MiB, 256 KiB
export const formatBytes = (n: number) =>
  n < 2 ** 20 ? `${Math.round(n / 1024)} KiB` : `${+(n / 2 ** 20).toFixed(1)} MiB`;

// The `request` field of a multipart body, and its file parts (fastify-multipart's keyValues: Buffers).
export function splitMultipart(
  body: Record<string, unknown>,
  validate: (v: unknown) => string | null,
): { request: GenerationRequest; files: Map<string, Buffer> } {
  const files = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(body)) {
    if (k === 'request') continue;
    if (Array.isArray(v))
      throw new HttpError(400, `the multipart body has ${v.length} parts named '${k}'; give each upload its own name`);
    if (!Buffer.isBuffer(v))
      throw new HttpError(400, `multipart field '${k}' is not a file (only 'request' may be a plain field)`);
    files.set(k, v);
  }
  if (typeof body.request !== 'string')
    throw new HttpError(400, "the multipart body has no 'request' field (the request as JSON)");
  let request: unknown;
  try {
    request = JSON.parse(body.request);
  } catch (e) {
    throw new HttpError(400, `the 'request' field is not JSON (${(e as Error).message})`);
  }
  const problem = validate(request);
  if (problem) throw new HttpError(400, problem);
  return { request: request as GenerationRequest, files };
}

async function readPrompt(
  which: 'prompt' | 'negative prompt',
  segments: GenerationRequest['prompt'],
  files: Map<string, Buffer>,
  used: Set<string>,
  limits: UploadLimits,
  refs: Map<string, Buffer>,
): Promise<StoredSegment[]> {
  const prefix = which === 'prompt' ? 'prompt' : 'negative';
  const out: StoredSegment[] = [];
  let images = 0;
  for (const [i, seg] of segments.entries()) {
    const where = `segment ${i + 1}`;
    const fail = (detail: string, status = 400) => new HttpError(status, new PromptError(detail, where, which).message);
    if (seg.text !== undefined) {
      out.push({ text: seg.text });
      continue;
    }
    let bytes: Buffer;
    if (seg.upload !== undefined) {
      const file = files.get(seg.upload);
      if (!file) throw fail(`no file part named '${seg.upload}' in this request`);
      used.add(seg.upload);
      bytes = file;
    } else {
      const b64 = seg.image!.replace(DATA_URL, '').replace(/\s+/g, '');
      if (!BASE64.test(b64) || b64.length % 4 === 1)
        throw fail(
          "image is not base64 data (send the file's bytes as base64, or a base64 data: URL; the API reads no server file)",
        );
      bytes = Buffer.from(b64, 'base64');
    }
    if (bytes.length > limits.uploadBytes)
      throw fail(
        `the image is ${formatBytes(bytes.length)}, over the ${formatBytes(limits.uploadBytes)} limit per image`,
        413,
      );
    images++;
    if (images > limits.maxImages) {
      const total = segments.filter((s) => s.text === undefined).length;
      throw fail(`has ${total} images; this model takes at most ${limits.maxImages} (the first one too many is here)`);
    }
    try {
      await checkImage(new Uint8Array(bytes), { where });
    } catch (e) {
      if (e instanceof PromptError) throw new HttpError(400, e.about(which).message);
      throw e;
    }
    // stored re-encoded as PNG (EXIF orientation applied): one safe type to serve back, and the very pixels the
    // model is given, so the stored reference reproduces the result exactly
    let png: Buffer;
    try {
      png = await sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS }).rotate().png().toBuffer();
    } catch (e) {
      throw fail(`the image data could not be decoded (${(e as Error).message})`);
    }
    const name = `${prefix}-${images}.png`;
    refs.set(name, png);
    out.push({ reference: name });
  }
  return out;
}

export async function parseGeneration(
  request: GenerationRequest,
  files: Map<string, Buffer>,
  limits: UploadLimits,
): Promise<ParsedRequest> {
  const refs = new Map<string, Buffer>();
  const used = new Set<string>();
  const prompt = await readPrompt('prompt', request.prompt, files, used, limits, refs);
  if (prompt.every((s) => 'text' in s && !s.text.trim())) {
    throw new HttpError(400, 'prompt: is empty: give some text and/or an image segment');
  }
  const negativePrompt = await readPrompt('negative prompt', request.negativePrompt ?? [], files, used, limits, refs);
  const unused = [...files.keys()].filter((k) => !used.has(k));
  if (unused.length) throw new HttpError(400, `file part '${unused[0]}' is not named by any { upload } segment`);
  return {
    prompt,
    negativePrompt,
    refs,
    settings: {
      steps: request.steps ?? DEFAULTS.steps,
      guidance: request.guidance ?? DEFAULTS.guidance,
      seed: request.seed ?? Math.floor(Math.random() * 2 ** 32),
      n: request.n ?? DEFAULTS.n,
      sampler: request.sampler ?? DEFAULTS.sampler,
    },
  };
}

// A body refused for its size before it was read must still be read (and thrown away) before the answer goes out:
// a client such as fetch/undici is still writing it, and a socket closed under it is an EPIPE, not the 413 it
// should see. The wait ends after `capBytes` (a client that sends more gets the answer and its connection closed, as
// before; the rest is discarded until the close).
export function drainBody(req: import('node:http').IncomingMessage, capBytes: number): Promise<void> {
  return new Promise((resolve) => {
    if (req.complete || req.destroyed) return resolve();
    let read = 0;
    req.on('data', (chunk: Buffer) => {
      read += chunk.length;
      if (read > capBytes) resolve();
    });
    for (const event of ['end', 'close', 'error']) req.once(event, () => resolve());
    req.resume();
  });
}
