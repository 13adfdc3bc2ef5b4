// A real detector for real photos whose weights ship inside an npm package: @vladmandic/human's CenterNet
// (80 COCO classes) and BlazeFace (faces, for the head-crop rule), on TensorFlow.js's WebAssembly backend.
// Nothing is downloaded: the models load from node_modules through file:// URLs. CenterNet is closed-vocabulary,
// so caption words reach its class names through words.ts (plurals + synonyms); the paper's open-vocabulary
// GroundingDINO (section 4) has no build that can ship here (see docs/DATA.md).
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Box, RawImage } from '../../image/index.ts';
import type { Detection, Detector } from './types.ts';
import { groundablePhrases, phraseMatchesClass } from './words.ts';

const require = createRequire(import.meta.url);

export interface HumanDetectorOptions {
  minScore?: number; // CenterNet's scores are low-ish on real photos: the cat in `chelsea` scores ~0.46
  maxObjects?: number;
  minFaceScore?: number;
}

// The parts of human's API used here (its bundled types pull in all of tfjs).
interface HumanResult {
  object: { score: number; label: string; box: [number, number, number, number] }[];
  face: { score: number; box: [number, number, number, number] }[];
}
interface HumanInstance {
  tf: { tensor(data: Uint8Array, shape: number[], dtype: 'int32'): { dispose(): void } };
  load(): Promise<void>;
  detect(input: unknown): Promise<HumanResult & { error?: string | null }>;
}

// Node's fetch has no file:// scheme and tfjs's model loader goes through fetch, so serve file:// reads from
// disk while the models load, then put the real fetch back.
async function withFileFetch<T>(fn: () => Promise<T>): Promise<T> {
  const real = globalThis.fetch;
  globalThis.fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (url.startsWith('file://')) return new Response(await readFile(new URL(url)), { status: 200 });
    return real(input, init);
  }) as typeof fetch;
  try {
    return await fn();
  } finally {
    globalThis.fetch = real;
  }
}

export class HumanDetector implements Detector {
  readonly name = 'human-centernet-blazeface';
  private last: { image: RawImage; result: Promise<HumanResult> } | undefined;
  private constructor(private readonly human: HumanInstance, private readonly opts: Required<HumanDetectorOptions>) {}

  static async load(options: HumanDetectorOptions = {}): Promise<HumanDetector> {
    const opts = { minScore: 0.25, maxObjects: 10, minFaceScore: 0.5, ...options };
    const humanDir = path.dirname(path.dirname(require.resolve('@vladmandic/human')));
    const wasmDir = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
    // The node-wasm build takes tfjs core, converter and the wasm backend from node_modules (no native tfjs-node).
    const wasm = require('@tensorflow/tfjs-backend-wasm') as { setWasmPaths(p: string): void };
    wasm.setWasmPaths(wasmDir);
    const { Human } = require(path.join(humanDir, 'dist', 'human.node-wasm.js')) as { Human: new (cfg: object) => HumanInstance };
    const human = new Human({
      backend: 'wasm',
      wasmPath: wasmDir,
      modelBasePath: pathToFileURL(path.join(humanDir, 'models')).href + '/',
      debug: false,
      cacheSensitivity: 0, // every call is a new photo: never reuse the previous frame's result
      face: {
        enabled: true,
        detector: { enabled: true, rotation: false, maxDetected: 5, minConfidence: opts.minFaceScore },
        mesh: { enabled: false }, iris: { enabled: false }, description: { enabled: false }, emotion: { enabled: false },
        antispoof: { enabled: false }, liveness: { enabled: false }, attention: { enabled: false },
      },
      body: { enabled: false }, hand: { enabled: false }, gesture: { enabled: false }, segmentation: { enabled: false },
      object: { enabled: true, modelPath: 'centernet.json', minConfidence: Math.min(opts.minScore, 0.2), maxDetected: opts.maxObjects },
    });
    await withFileFetch(() => human.load());
    return new HumanDetector(human, opts);
  }

  // One forward pass serves both detect() and faces() on the same image.
  private run(image: RawImage): Promise<HumanResult> {
    if (this.last?.image === image) return this.last.result;
    if (image.channels !== 3) throw new Error('HumanDetector: expects an RGB image');
    const result = (async () => {
      const batch = this.human.tf.tensor(image.data, [1, image.height, image.width, 3], 'int32');
      try {
        const r = await this.human.detect(batch);
        if (r.error) throw new Error(`human: ${r.error}`);
        return r;
      } finally {
        batch.dispose();
      }
    })();
    this.last = { image, result };
    return result;
  }

  async detect(image: RawImage, phrases: readonly string[]): Promise<Detection[]> {
    const r = await this.run(image);
    const out: Detection[] = [];
    for (const o of r.object) {
      if (o.score < this.opts.minScore) continue;
      for (const phrase of phrases)
        if (phraseMatchesClass(phrase, o.label)) out.push({ phrase, box: toBox(o.box), score: o.score, label: o.label });
    }
    return out;
  }

  async faces(image: RawImage): Promise<{ box: Box; score: number }[]> {
    const r = await this.run(image);
    return r.face.filter((f) => f.score >= this.opts.minFaceScore).map((f) => ({ box: toBox(f.box), score: f.score }));
  }

  phrasesFor(caption: string): string[] {
    return groundablePhrases(caption);
  }
}

const toBox = ([x, y, w, h]: readonly number[]): Box => ({ x: x!, y: y!, w: w!, h: h! });
