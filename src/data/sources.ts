// Where samples come from, as one deterministic function of (run spec, sample index): EmojiWorld scenes with
// their ground-truth boxes, or a folder of real photos with a captions.jsonl and the real detector. Every random
// draw for sample i comes from deriveSeed(seed, i), so shards can be made in any order, by any worker, twice.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { bootstrapSample, type BootstrapSample } from './bootstrap/bootstrap.ts';
import type { BootstrapConfig } from './bootstrap/rules.ts';
import { GroundTruthDetector } from './detect/ground-truth.ts';
import { HumanDetector } from './detect/human.ts';
import type { Detector } from './detect/types.ts';
import { EmojiWorld, type Split } from './emoji-world/scene.ts';
import { decodeImage, encodePng } from '../image/index.ts';
import { deriveSeed, Rng } from './rng.ts';
import type { ShardSample } from './shards/tar.ts';

export interface RunSpec {
  source: 'emoji-world' | 'folder';
  n: number; // samples (emoji-world) or caption lines (folder)
  seed: number;
  size: number; // target side
  stage: 1 | 2;
  samplesPerShard: number;
  config: BootstrapConfig;
  split?: Split; // emoji-world
  renderScale?: number; // emoji-world: scenes are drawn this much larger so crops keep detail
  images?: string; // folder: image root
  captions?: string; // folder: captions.jsonl
}

export interface CaptionLine { image: string; caption: string }

// Parse captions.jsonl; malformed lines become `undefined` (skipped later, one count each) so line numbers, and
// with them sample indices and seeds, never shift.
export async function readCaptions(file: string): Promise<(CaptionLine | undefined)[]> {
  const text = await readFile(file, 'utf8');
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.map((l) => {
    try {
      const o = JSON.parse(l) as Partial<CaptionLine>;
      return typeof o.image === 'string' && typeof o.caption === 'string' && o.caption.trim() ? { image: o.image, caption: o.caption } : undefined;
    } catch {
      return undefined;
    }
  });
}

export type Made = { sample: ShardSample; stats: BootstrapSample['dropped']; crops: number } | { skipped: string };

export interface Source {
  make(index: number): Promise<Made>;
  close(): Promise<void>;
}

const keyOf = (i: number) => String(i).padStart(9, '0');

async function encodeSample(key: string, b: BootstrapSample, meta: Record<string, unknown>): Promise<ShardSample> {
  const files = new Map<string, Uint8Array>();
  files.set('png', await encodePng(b.target));
  files.set('json', new TextEncoder().encode(JSON.stringify({ key, caption: b.caption, prompt: b.prompt, dropped: b.dropped, ...meta })));
  for (let k = 0; k < b.images.length; k++) files.set(`img${k}.png`, await encodePng(b.images[k]!));
  return { key, files };
}

export async function openSource(spec: RunSpec, log: (line: string) => void = () => {}): Promise<Source> {
  if (spec.source === 'emoji-world') {
    const scale = spec.renderScale ?? 2;
    const world = new EmojiWorld({ size: spec.size * scale, seed: spec.seed, split: spec.split ?? 'train' });
    return {
      async make(index) {
        const scene = world.scene(index);
        const b = await bootstrapSample({
          image: scene.image,
          caption: scene.caption,
          detector: new GroundTruthDetector(scene.objects),
          rng: new Rng(deriveSeed(spec.seed, index, 'bootstrap')),
          config: spec.config,
          targetSize: spec.size,
        });
        const objects = scene.objects.map((o) => ({
          slug: o.slug, phrase: o.phrase, words: o.words, heldOut: o.heldOut,
          box: { x: o.box.x / scale, y: o.box.y / scale, w: o.box.w / scale, h: o.box.h / scale }, // target pixels
        }));
        const meta = { source: 'emoji-world', index, stage: spec.stage, split: scene.split, heldOut: scene.heldOut, style: scene.style, background: scene.background, objects, sourceSide: scene.size };
        return { sample: await encodeSample(keyOf(index), b, meta), stats: b.dropped, crops: b.images.length };
      },
      async close() {},
    };
  }
  if (!spec.images || !spec.captions) throw new Error('folder source needs --images DIR and --captions FILE');
  const lines = await readCaptions(spec.captions);
  const detector: Detector = await HumanDetector.load();
  const root = spec.images;
  return {
    async make(index) {
      const line = lines[index];
      if (!line) {
        log(`skip line ${index + 1} of ${spec.captions}: not a JSON object with string "image" and "caption"`);
        return { skipped: 'bad-caption-line' };
      }
      const file = path.resolve(root, line.image);
      let image;
      try {
        image = await decodeImage(file);
      } catch (e) {
        log(`skip ${file}: unreadable image (${(e as Error).message.split('\n')[0]})`);
        return { skipped: 'bad-image' };
      }
      const b = await bootstrapSample({
        image, caption: line.caption, detector,
        rng: new Rng(deriveSeed(spec.seed, index, 'bootstrap')),
        config: spec.config, targetSize: spec.size,
      });
      if (spec.stage === 2 && b.images.length === 0) return { skipped: 'no-crop' };
      const meta = { source: 'folder', index, stage: spec.stage, image: line.image, sourceSide: Math.max(image.width, image.height) };
      return { sample: await encodeSample(keyOf(index), b, meta), stats: b.dropped, crops: b.images.length };
    },
    async close() {},
  };
}
