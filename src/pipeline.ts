// MumuPipeline: multimodal prompt in, images out (paper section 2.1 sampling: 50-step DDIM with classifier-free
// guidance at scale 6, no negative prompt). The encoder (VLM + adapter) runs once per call, on the prompt and the
// unconditional prompt together; each denoising step is one UNet call on the whole batch [uncond x n, cond x n].
import { existsSync } from 'node:fs';
import { writeFile, mkdir } from 'node:fs/promises';
import { readConfig, readJson } from './config.ts';
import { join } from 'node:path';
import { Generator, randn, cat, noGrad, tidy, cuda, type Tensor } from './torch/index.ts';
import {
  classifierFreeGuidance,
  inferenceTimesteps,
  SAMPLERS,
  DEFAULT_SAMPLER,
  isSamplerName,
  samplerChoices,
  type SamplerName,
  type Conditioning,
  type CondModel,
  readSchedulerConfig,
  writeSchedulerConfig,
  scheduleFromConfig,
  SD_SCHEDULER_CONFIG,
  type NoiseSchedule,
  type SchedulerConfig,
  type StepInfo,
  type DenoiseModel,
} from './diffusion/index.ts';
import {
  encodePrompt,
  collatePrompts,
  PromptError,
  PromptTokenizer,
  type PromptBatch,
  type PromptInput,
  type PromptSpec,
  type EncodedPrompt,
} from './prompt/index.ts';
import { MumuModel, checkImageSide } from './models/index.ts';
import type { RgbImage } from './image/index.ts';
import { imagesFromTensor } from './image/tensor.ts';

// What a loaded model gives the pipeline. `fromPretrained` builds it from a model folder; tests and other backends
// may build one directly.
export interface MumuComponents {
  prompt: PromptSpec;
  // VLM + adapter: a batch of prompts -> what the UNet cross-attends to (paper section 3)
  encode(batch: PromptBatch): Conditioning;
  // the UNet's prediction (eps or v, per scheduler.prediction_type) for latents x at timestep t
  unet: CondModel;
  // latents (already divided by the VAE's scaling factor) -> images in [-1, 1], (B, 3, H, W)
  decode(latents: Tensor): Tensor;
  latentShape: [number, number, number];
  scheduler: SchedulerConfig;
  schedule: NoiseSchedule;
  device: string;
  name: string;
  // The same components with reference images encoded at side x side px instead of the ViT's native side: other
  // tokens per image (ViT position embeddings interpolated). Absent where the backend cannot; throws a RangeError
  // for a side the ViT cannot take.
  atReferenceSize?(side: number): MumuComponents;
}

export interface LoadOptions {
  device?: string;
  // encode reference images at this side (px, a multiple of the ViT's patch size) instead of its native one
  referenceSize?: number;
}

export interface GenerateOptions {
  steps?: number;
  guidanceScale?: number;
  // image i of the call starts from the noise of seed + i, so any one image can be re-made alone
  seed?: number;
  // replaces the empty unconditional prompt of guidance (so it has no effect at guidanceScale 1)
  negativePrompt?: PromptInput;
  numImages?: number;
  sampler?: SamplerName;
  eta?: number;
  cwd?: string;
  onStep?: (info: StepInfo) => void;
  // Cancels the call: checked before encoding, after it, and after every sampling step (right after onStep, so an
  // onStep that aborts stops that step's call); generate() then rejects with a GenerationAbortedError.
  signal?: AbortSignal;
}

export class GenerationAbortedError extends Error {
  constructor() {
    super('generation aborted');
    this.name = 'AbortError';
  }
}

// An output image and the seed that re-makes it alone.
export type GeneratedImage = RgbImage & { seed: number };

export interface GenerateResult {
  images: GeneratedImage[];
  prompt: string; // text form, for metadata
  negativePrompt: string;
  seed: number;
  steps: number;
  guidanceScale: number;
  sampler: SamplerName;
  // wall-clock milliseconds: the UNet's share is what the 10% overhead target is measured against
  timings: { encode: number; unet: number; denoise: number; decode: number; total: number; unetCalls: number };
}

export const randomSeed = () => Math.floor(Math.random() * 2 ** 32);

const now = () => performance.now();

// Splits an encoder batch [b0, b1, ...] back into per-prompt conditionings.
function rows(c: Conditioning, i: number): Conditioning {
  return { context: c.context.narrow(0, i, 1), mask: c.mask ? c.mask.narrow(0, i, 1) : null };
}

export class MumuPipeline {
  constructor(readonly components: MumuComponents) {}

  static async fromPretrained(dir: string, o: LoadOptions = {}): Promise<MumuPipeline> {
    return new MumuPipeline(await loadComponents(dir, o));
  }

  async generate(prompt: PromptInput, o: GenerateOptions = {}): Promise<GenerateResult> {
    const c = this.components;
    const steps = o.steps ?? 50;
    const scale = o.guidanceScale ?? 6;
    const n = o.numImages ?? 1;
    const seed = o.seed ?? randomSeed();
    const sampler = o.sampler ?? DEFAULT_SAMPLER;
    if (!Number.isInteger(steps) || steps < 1 || steps > c.scheduler.num_train_timesteps)
      throw new RangeError(`steps must be an integer in 1..${c.scheduler.num_train_timesteps}, got ${steps}`);
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`numImages must be a positive integer, got ${n}`);
    if (!Number.isFinite(scale)) throw new RangeError(`guidanceScale must be a number, got ${scale}`);
    if (!Number.isSafeInteger(seed) || seed < 0)
      throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
    if (!isSamplerName(sampler)) throw new RangeError(`sampler must be ${samplerChoices()}, got ${sampler}`);
    const sample = await SAMPLERS[sampler].load();
    const eta = o.eta ?? SAMPLERS[sampler].eta;
    const t0 = now();
    const checkAbort = () => {
      if (o.signal?.aborted) throw new GenerationAbortedError();
    };
    checkAbort();

    const cond = await encodePrompt(prompt, c.prompt, { cwd: o.cwd });
    const neg = o.negativePrompt ?? '';
    let uncond: EncodedPrompt | undefined;
    if (scale !== 1) {
      try {
        uncond = await encodePrompt(neg, c.prompt, { cwd: o.cwd, allowEmpty: true });
      } catch (e) {
        if (e instanceof PromptError) throw e.about('negative prompt');
        throw e;
      }
    }
    checkAbort();
    const timesteps = inferenceTimesteps(
      c.scheduler.num_train_timesteps,
      steps,
      c.scheduler.timestep_spacing,
      c.scheduler.steps_offset,
    );
    const timings = { encode: 0, unet: 0, denoise: 0, decode: 0, total: 0, unetCalls: 0 };
    const sync = c.device.startsWith('cuda') ? () => cuda.synchronize() : () => {};

    let t3 = 0;
    const decoded = noGrad(() =>
      tidy(() => {
        const t1 = now();
        const prompts = uncond ? [uncond, cond] : [cond];
        const batch = collatePrompts(prompts, c.prompt);
        const enc = c.encode(moveBatch(batch, c.device));
        const [u, k] = uncond ? [rows(enc, 0), rows(enc, 1)] : [rows(enc, 0), rows(enc, 0)];
        sync();
        timings.encode = now() - t1;

        const timedUnet: CondModel = (x, t, cc) => {
          const s = now();
          const out = c.unet(x, t, cc);
          sync();
          timings.unet += now() - s;
          timings.unetCalls++;
          return out;
        };
        const model: DenoiseModel = classifierFreeGuidance(timedUnet, k, u, scale);
        const noise = cat(
          Array.from({ length: n }, (_, i) => randn([1, ...c.latentShape], { generator: new Generator(seed + i) })),
          0,
        ).to(c.device);
        const t2 = now();
        const latents = sample(model, noise, c.schedule, {
          timesteps,
          prediction: c.scheduler.prediction_type,
          eta,
          generator: new Generator(seed),
          onStep: (info: StepInfo) => {
            o.onStep?.(info);
            checkAbort();
          },
        });
        sync();
        timings.denoise = now() - t2;

        t3 = now();
        return c.decode(latents); // (n, 3, H, W) in [-1, 1]
      }),
    );
    const images = imagesFromTensor(decoded).map((im, i): GeneratedImage => ({ ...im, seed: seed + i }));
    decoded.dispose();
    timings.decode = now() - t3;
    timings.total = now() - t0;
    return {
      images,
      prompt: cond.text,
      negativePrompt: uncond?.text ?? '',
      seed,
      steps,
      guidanceScale: scale,
      sampler,
      timings,
    };
  }
}

function moveBatch(b: PromptBatch, device: string): PromptBatch {
  if (device === 'cpu') return b;
  return {
    ...b,
    inputIds: b.inputIds.to(device),
    attentionMask: b.attentionMask.to(device),
    pixelValues: b.pixelValues?.to(device) ?? null,
  };
}

// The settings that reproduce an image, as PNG text chunks (`mumu info` reads them back). `parameters` repeats them
// in AUTOMATIC1111's layout, which most image viewers and model sites already parse.
export function generationInfo(r: GenerateResult, image: GeneratedImage, model: string): Record<string, string> {
  const info: Record<string, string> = {
    prompt: r.prompt,
    seed: String(image.seed),
    steps: String(r.steps),
    guidance_scale: String(r.guidanceScale),
    sampler: r.sampler,
    model,
    size: `${image.width}x${image.height}`,
    software: 'mumu',
  };
  if (r.negativePrompt) info.negative_prompt = r.negativePrompt;
  info.parameters = [
    r.prompt,
    ...(r.negativePrompt ? [`Negative prompt: ${r.negativePrompt}`] : []),
    `Steps: ${r.steps}, Sampler: ${SAMPLERS[r.sampler].label}, CFG scale: ${r.guidanceScale}, Seed: ${image.seed}, Size: ${image.width}x${image.height}, Model: ${model}`,
  ].join('\n');
  return info;
}

// The prompt side of a model folder, `tokenizer/processor_config.json` (all keys optional): how many images a
// prompt may hold (paper stage 1: up to 4) and the images' normalisation (SigLIP: mean = std = 0.5).
export interface ProcessorConfig {
  max_images: number;
  image_mean: number[];
  image_std: number[];
  max_length: number | null;
  // the side (px) reference images are encoded at, when the model was trained at another than its ViT's own
  // (mumu-stage2: 2x, 4x the tokens); null = the ViT's image_size
  reference_size: number | null;
}
export const DEFAULT_PROCESSOR: ProcessorConfig = {
  max_images: 4,
  image_mean: [0.5, 0.5, 0.5],
  image_std: [0.5, 0.5, 0.5],
  max_length: null,
  reference_size: null,
};

function parseProcessorConfig(raw: unknown, where: string): ProcessorConfig {
  return readConfig(where, raw, {
    defaults: DEFAULT_PROCESSOR,
    rules: {
      max_images: { int: true, min: 0 },
      reference_size: { int: true, min: 1 },
      max_length: { int: true, min: 1 },
    },
  });
}

// A model folder (diffusers-like: model_index.json; unet/, vae/, vlm/, adapter/ from src/models; tokenizer/ and
// scheduler/ from here) -> components.
export async function loadComponents(dir: string, o: LoadOptions = {}): Promise<MumuComponents> {
  const device = o.device ?? 'cpu';
  if (device.startsWith('cuda') && !cuda.isAvailable()) {
    throw new Error(
      `device '${device}': ${cuda.compiled ? 'this libtorch build has CUDA but sees no GPU' : 'this libtorch build has no CUDA support'}`,
    );
  }
  if (!existsSync(join(dir, 'model_index.json')))
    throw new Error(`${dir} is not a mumu model folder (no model_index.json)`);
  const tokFile = join(dir, 'tokenizer', 'tokenizer.json');
  if (!existsSync(tokFile)) throw new Error(`${dir} has no tokenizer/tokenizer.json`);
  const tokenizer = await PromptTokenizer.fromFile(tokFile);
  const procFile = join(dir, 'tokenizer', 'processor_config.json');
  const proc = parseProcessorConfig(existsSync(procFile) ? readJson(procFile) : {}, procFile);
  const schedFile = join(dir, 'scheduler', 'scheduler_config.json');
  const scheduler = existsSync(schedFile) ? await readSchedulerConfig(schedFile) : SD_SCHEDULER_CONFIG;

  const model = MumuModel.load(dir).eval();
  if (device !== 'cpu') model.to(device);
  const imageTokenId = model.vlm.config.image_token_id;
  const tokImage = tokenizer.imageTokenId;
  if (tokImage !== undefined && tokImage !== imageTokenId) {
    throw new Error(
      `${dir}: the tokenizer's <image> is id ${tokImage} but vlm/config.json says image_token_id ${imageTokenId}`,
    );
  }
  if (tokenizer.vocabSize > model.vlm.config.text_config.vocab_size) {
    throw new Error(
      `${dir}: the tokenizer has ${tokenizer.vocabSize} tokens but the VLM's vocab_size is ${model.vlm.config.text_config.vocab_size}`,
    );
  }
  const components = componentsFromModel(model, { tokenizer, processor: proc, scheduler, device, name: dir });
  const side = o.referenceSize ?? proc.reference_size ?? undefined;
  return side === undefined ? components : components.atReferenceSize!(side);
}

export interface ModelComponentsOptions {
  tokenizer: PromptTokenizer;
  processor?: ProcessorConfig;
  scheduler?: SchedulerConfig;
  device?: string;
  name?: string;
  // what encodes the prompt: MUMU's VLM + adapter, or the text-only base's text encoder (multimodal prompts refused)
  encoder?: 'vlm' | 'text';
}

// Components over a model in memory: what loadComponents builds from a folder, and what the trainer's sample grids
// and the evaluator's baselines generate through, so that training samples and user generations share one path.
export function componentsFromModel(model: MumuModel, o: ModelComponentsOptions): MumuComponents {
  const proc = o.processor ?? DEFAULT_PROCESSOR;
  const scheduler = o.scheduler ?? SD_SCHEDULER_CONFIG;
  const name = o.name ?? 'model';
  const { vlm, unet, vae } = model;
  const text = o.encoder === 'text';
  if (text && !model.text_encoder) throw new Error(`${name} has no text_encoder`);
  const latentSide = unet.config.sample_size ?? vae.config.sample_size / vae.downsampleFactor;
  const native = vlm.config.vision_config.image_size;
  // the longest prompt the encoder takes: the text encoder's positions, or the VLM's (and its attention window)
  const tc = vlm.config.text_config;
  const modelLimit = text
    ? model.text_encoder!.config.max_position_embeddings
    : Math.min(tc.max_position_embeddings, tc.sliding_window ?? Infinity);
  const components: MumuComponents = {
    prompt: {
      tokenizer: o.tokenizer,
      imageTokenId: vlm.config.image_token_id,
      imageSize: native,
      tokensPerImage: vlm.tokensPerImage,
      maxImages: text ? 0 : proc.max_images,
      maxLength: Math.min(proc.max_length ?? Infinity, modelLimit),
      imageMean: proc.image_mean,
      imageStd: proc.image_std,
    },
    encode: text
      ? (b) => ({ context: model.encodeText(b.inputIds, b.attentionMask), mask: b.attentionMask })
      : (b) => ({ context: model.encodePrompt(b), mask: b.attentionMask }),
    unet: (x, t, cond) => unet.forward(x, t, cond.context, { encoderAttentionMask: cond.mask ?? null }),
    decode: (latents) => vae.decode(vae.unscaleLatents(latents)),
    latentShape: [unet.config.in_channels, latentSide, latentSide],
    scheduler,
    schedule: scheduleFromConfig(scheduler),
    device: o.device ?? 'cpu',
    name,
  };
  // the prompt side is all that changes: the placeholders per image and the side images are resized to
  components.atReferenceSize = (side) => {
    checkImageSide(vlm.config.vision_config, side, 'reference size');
    const tokensPerImage = vlm.tokensFor(side);
    return {
      ...components,
      prompt: { ...components.prompt, imageSize: side, tokensPerImage },
      name: side === native ? name : `${name} @ ${side} px references`,
    };
  };
  return components;
}

// Writes a whole model folder: the model's components (src/models) plus the tokenizer, its processor config and
// the scheduler config, all listed in model_index.json.
export async function savePretrained(
  model: MumuModel,
  dir: string,
  o: { tokenizer: object; processor?: Partial<ProcessorConfig>; scheduler?: SchedulerConfig },
): Promise<void> {
  model.extraIndex.tokenizer = ['mumu', 'PromptTokenizer'];
  model.extraIndex.scheduler = ['diffusers', 'DDIMScheduler'];
  model.save(dir);
  await mkdir(join(dir, 'tokenizer'), { recursive: true });
  await mkdir(join(dir, 'scheduler'), { recursive: true });
  await writeFile(join(dir, 'tokenizer', 'tokenizer.json'), JSON.stringify(o.tokenizer) + '\n');
  await writeFile(
    join(dir, 'tokenizer', 'processor_config.json'),
    JSON.stringify({ ...DEFAULT_PROCESSOR, ...o.processor }, null, 2) + '\n',
  );
  await writeSchedulerConfig(join(dir, 'scheduler', 'scheduler_config.json'), o.scheduler ?? SD_SCHEDULER_CONFIG);
}
