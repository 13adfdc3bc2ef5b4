// A multimodal prompt -> the VLM's interleaved input: token ids where every image is a run of N image-token ids
// standing exactly where the image stood in the text (the VLM swaps those embeddings for the image's features,
// as Idefics2 does), plus the preprocessed images in prompt order. MUMU removes Idefics2's perceiver so that N is
// the ViT's patch count (paper section 3), e.g. 324 tokens per image in stage 1 (section 5).
import { tensor, type Tensor } from '../torch/index.ts';
import { parsePrompt, isEmptyPrompt, formatPrompt, PromptError, type PromptInput, type PromptPart } from './parse.ts';
import { prepareImage, type PreparedImage } from './image.ts';
import type { PromptTokenizer } from './tokenizer.ts';

export interface PromptSpec {
  tokenizer: PromptTokenizer;
  imageSize: number; // the ViT's input side
  tokensPerImage: number; // N
  maxImages: number; // the model's limit per prompt
  imageTokenId?: number; // defaults to the tokenizer's <image>
  maxLength?: number; // total sequence bound, if the model has one
  imageMean?: number[];
  imageStd?: number[];
}

export interface EncodedPrompt {
  inputIds: number[];
  // where each image's run of tokens starts, in prompt order
  imageSpans: { start: number; length: number }[];
  images: PreparedImage[];
  text: string; // the prompt written back in text form
}

export interface EncodeOptions {
  cwd?: string;
  // the unconditional (empty) prompt is legal only where the caller asks for it: guidance and training
  allowEmpty?: boolean;
}

export async function encodePrompt(
  prompt: PromptInput | PromptPart[],
  spec: PromptSpec,
  o: EncodeOptions = {},
): Promise<EncodedPrompt> {
  const parts = isParts(prompt) ? prompt : parsePrompt(prompt);
  if (!o.allowEmpty && isEmptyPrompt(parts)) {
    throw new PromptError('is empty: write some text and/or <img:PATH> tags');
  }
  const imageParts = parts.filter((p) => p.kind === 'image');
  if (imageParts.length > spec.maxImages) {
    const extra = imageParts[spec.maxImages]!;
    throw new PromptError(
      `has ${imageParts.length} images; this model takes at most ${spec.maxImages} (the first one too many is here)`,
      extra.where,
    );
  }
  const imageTokenId = spec.imageTokenId ?? spec.tokenizer.imageTokenId;
  if (imageParts.length && imageTokenId === undefined)
    throw new Error('the tokenizer has no <image> token and the model config names none');
  // all images at once: decoding is the slow part and sharp runs it off the main thread
  const cwd = o.cwd;
  const images = await Promise.all(
    imageParts.map((p) => prepareImage(p.source, spec.imageSize, { cwd, where: p.where })),
  );

  const ids: number[] = spec.tokenizer.bosId !== undefined ? [spec.tokenizer.bosId] : [];
  const imageSpans: EncodedPrompt['imageSpans'] = [];
  for (const p of parts) {
    if (p.kind === 'text') {
      ids.push(...spec.tokenizer.encodeText(p.text));
    } else {
      imageSpans.push({ start: ids.length, length: spec.tokensPerImage });
      for (let k = 0; k < spec.tokensPerImage; k++) ids.push(imageTokenId!);
    }
  }
  if (spec.maxLength !== undefined && ids.length > spec.maxLength) {
    throw new PromptError(
      `is ${ids.length} tokens (${imageParts.length} images x ${spec.tokensPerImage} + text); this model takes at most ${spec.maxLength}`,
    );
  }
  return { inputIds: ids, imageSpans, images, text: formatPrompt(parts) };
}

const isParts = (p: unknown): p is PromptPart[] =>
  Array.isArray(p) && p.length > 0 && p.every((x) => x && typeof x === 'object' && 'kind' in x);

// Several encoded prompts as one right-padded batch: input ids (B, T) int64, attention mask (B, T) (1 = token),
// and all their images stacked in order (prompt 0's images first), or null when there are none.
export interface PromptBatch {
  inputIds: Tensor;
  attentionMask: Tensor;
  pixelValues: Tensor | null;
  imagesPerPrompt: number[];
}

export function collatePrompts(
  prompts: EncodedPrompt[],
  spec: Pick<PromptSpec, 'tokenizer' | 'imageMean' | 'imageStd'>,
): PromptBatch {
  const T = Math.max(1, ...prompts.map((p) => p.inputIds.length));
  const pad = spec.tokenizer.padId;
  const ids = new BigInt64Array(prompts.length * T).fill(BigInt(pad));
  const mask = new Float32Array(prompts.length * T);
  prompts.forEach((p, b) =>
    p.inputIds.forEach((id, i) => {
      ids[b * T + i] = BigInt(id);
      mask[b * T + i] = 1;
    }),
  );
  const all = prompts.flatMap((p) => p.images);
  return {
    inputIds: tensor(ids, { shape: [prompts.length, T] }),
    attentionMask: tensor(mask, { shape: [prompts.length, T] }),
    pixelValues: all.length ? toPixelValues(all, spec.imageMean, spec.imageStd) : null,
    imagesPerPrompt: prompts.map((p) => p.images.length),
  };
}

// (n, 3, S, S) float32 normalised per channel, (x / 255 - mean) / std; SigLIP's 0.5 / 0.5 maps to [-1, 1].
export function toPixelValues(
  images: PreparedImage[],
  mean: number[] = [0.5, 0.5, 0.5],
  std: number[] = [0.5, 0.5, 0.5],
): Tensor {
  if (!images.length) throw new Error('toPixelValues: no images');
  const S = images[0]!.size;
  const out = new Float32Array(images.length * 3 * S * S);
  images.forEach((im, n) => {
    for (let c = 0; c < 3; c++) {
      const base = (n * 3 + c) * S * S;
      for (let p = 0; p < S * S; p++) out[base + p] = (im.rgb[p * 3 + c]! / 255 - mean[c]!) / std[c]!;
    }
  });
  return tensor(out, { shape: [images.length, 3, S, S] });
}
