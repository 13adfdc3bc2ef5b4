// Three reference switches of the MUMU stages that go beyond the paper's bootstrap (all 0 by default: the paper's data).
//
// The paper's crops are cut from the target itself, so a reference always shows its object in the target's style;
// harmonisation (Finding 2: references from other styles redrawn in the asked one) and style transfer from an image
// (Finding 3) are left to emerge. Measured here they did not emerge enough (docs/TRAINING.md): with the base UNet
// frozen, a reference's tokens carry its own style and it wins over the asked one. EmojiWorld draws every content in
// several styles (consecutive scenes: paper section 4, "we paired each content with many different styles"), so both
// behaviours can be shown to the model directly:
//
// - data.restyle_references: each object crop is, with this probability, cut from a sibling scene instead (the same
//   content and layout in another training style) while the caption still asks the target's style: the reference
//   says *what*, the words say *how*, as in the evaluator's harmonisation task.
// - data.style_references: with this probability the caption's style name ("..., noto style") is replaced by an
//   image of one or two other objects in that style ("..., <img> style"), the form of the evaluator's style-transfer
//   prompts: the style image says *how*, and the objects it shows must not appear.
// - data.reference_backgrounds: each object crop is, with this probability, cut from the same scene drawn on a plain
//   colour (black half the time, the form of a user's cut-out reference such as the README's) while the caption still
//   asks the target's background. The paper's crops always carry the target's background around their object, so the
//   model learns to take the background from the references (measured: the README prompt's black-backed references
//   gave navy, not the asked blue); here the words must say it.
//
// Each draws from its own random stream, so switching one on leaves every other draw of a sample as it was.
import { clampBox, crop, type RawImage } from '../image/index.ts';
import { squareResize } from '../data/bootstrap/bootstrap.ts';
import type { BootstrapConfig } from '../data/bootstrap/rules.ts';
import type { ImageSegment, Segment } from '../data/bootstrap/prompt.ts';
import { drawObjects, type Scene } from '../data/emoji-world/scene.ts';
import { COLORS, type BackgroundSpec } from '../data/emoji-world/background.ts';
import type { Rng } from '../data/rng.ts';

export interface Referenced {
  prompt: Segment[];
  images: RawImage[];
}

// Replace object crops (not already recut), each with probability p, by the same object cut from `twinScene()` (the
// same content drawn otherwise: another style, another background), marked by `mark`. The twin is drawn only if some
// crop is chosen (a scene render per sample otherwise wasted on the data path). The random draws are made in segment
// order: each callback draws before its first await.
export async function recutReferences(
  sample: Referenced,
  twinScene: () => Scene,
  mark: (twin: Scene) => { restyle: string } | { background: string },
  p: number,
  rng: Rng,
  cfg: Pick<BootstrapConfig, 'cropSize' | 'padColor'>,
): Promise<Referenced & { recut: number }> {
  const images = [...sample.images];
  let recut = 0,
    scene: Scene | undefined;
  const prompt = await Promise.all(
    sample.prompt.map(async (seg): Promise<Segment> => {
      if (seg.type !== 'image' || seg.role !== 'object' || seg.restyle || seg.background || !rng.chance(p)) return seg;
      scene ??= twinScene();
      const twin = scene.objects.find((o) => o.phrase === seg.phrase);
      if (!twin) return seg;
      const box = clampBox(twin.box, scene.size, scene.size);
      images[seg.index] = await squareResize(crop(scene.image, box), cfg.cropSize, cfg);
      recut++;
      const { augment: _, ...rest } = seg;
      return { ...rest, box, ...mark(scene) };
    }),
  );
  return { prompt, images, recut };
}

// The plain background a recut crop is drawn on (data.reference_backgrounds): black half the time, else any named
// colour other than the scene's own.
export function plainBackground(rng: Rng, own: BackgroundSpec): BackgroundSpec {
  const own1 = own.kind === 'solid' ? own.colors[0] : undefined;
  const others = Object.keys(COLORS).filter((c) => c !== 'black' && c !== own1);
  const color = own1 !== 'black' && rng.chance(0.5) ? 'black' : rng.pick(others);
  return { kind: 'solid', colors: [color, color], angle: 0, period: 0.1 };
}

// With probability p, put an image of `others` drawn in `style` (on black, as crops are padded) where the caption's
// last text names the style: "..., noto style" -> "..., <img> style". Unchanged when the words are not there.
export function styleReference(
  sample: Referenced,
  stylePhrase: string,
  style: string,
  others: readonly string[],
  p: number,
  rng: Rng,
  size: number,
): Referenced {
  if (!rng.chance(p)) return sample;
  let k = sample.prompt.length - 1;
  while (k >= 0 && sample.prompt[k]!.type !== 'text') k--;
  const seg = sample.prompt[k];
  const tail = `${stylePhrase} style`;
  if (!seg || seg.type !== 'text' || !seg.text.endsWith(tail)) return sample;
  const image = drawObjects(rng, others, style, [0, 0, 0], size).image;
  const head = seg.text.slice(0, -tail.length);
  const ref: ImageSegment = { type: 'image', index: sample.images.length, role: 'style' };
  const replaced: Segment[] = [
    ...(head ? [{ type: 'text' as const, text: head }] : []),
    ref,
    { type: 'text', text: ' style' },
  ];
  return {
    prompt: [...sample.prompt.slice(0, k), ...replaced, ...sample.prompt.slice(k + 1)],
    images: [...sample.images, image],
  };
}
