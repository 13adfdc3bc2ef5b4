// `mumu generate` and `mumu info`.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve, join, parse as parsePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import cliProgress from 'cli-progress';
import { UsageError, intFlag, floatFlag, parseCommand } from './args.ts';
import { readText, encodePng, imageGrid, readImageFile, ImageFileError } from '../image/index.ts';
// parse.ts and image.ts only: the prompt is checked before libtorch is loaded, so a bad prompt fails fast
import { parsePromptText, isEmptyPrompt, PromptError } from '../prompt/parse.ts';
import { checkImage } from '../prompt/image.ts';
import { SAMPLERS, SAMPLER_NAMES, DEFAULT_SAMPLER, isSamplerName, samplerChoices } from '../diffusion/samplers.ts';
import type { GenerateResult } from '../pipeline.ts';

export const DEFAULT_MODEL = fileURLToPath(new URL('../../models/emoji-default', import.meta.url));

// "ddim (default, the paper's), euler, or euler_a (ancestral)"
function samplerHelp(): string {
  const items = SAMPLER_NAMES.map((n) => {
    const notes = [...(n === DEFAULT_SAMPLER ? ['default'] : []), ...(SAMPLERS[n].about ? [SAMPLERS[n].about] : [])];
    return notes.length ? `${n} (${notes.join(', ')})` : n;
  });
  return `${items.slice(0, -1).join(', ')}, or ${items.at(-1)}`;
}

export const GENERATE_HELP = `Usage: mumu generate "<prompt>" [-o out.png] [options]

Makes images from a multimodal prompt: text with images where they belong, e.g.
  mumu generate "a <img:dog.png> dog and a <img:rocket.png> rocket, in <img:style.png> style" -o out.png
Image paths are relative to the current folder; write \\< for a literal '<'. Images are padded to a square with
black and resized to the model's image size. The settings are stored in the PNG (see mumu info).

Options:
  -o, --out FILE      output PNG (default mumu.png). With --n > 1 it is a grid, and the images are also
                      written as FILE-1.png ... FILE-N.png
  -n, --n N           number of images, made in one batch (default 1)
  --seed N            random seed (default: random, printed and stored). Image i uses seed + i, so any image of
                      a batch can be made again alone
  --steps N           denoising steps (default 50, as the paper)
  --guidance S        classifier-free guidance scale (default 6, as the paper; 1 turns guidance off)
  --negative TEXT     negative prompt, text or multimodal (default: none, the empty prompt)
  --sampler NAME      ${samplerHelp()}
  --eta X             DDIM eta: 0 deterministic (default), 1 ancestral
  --model DIR         model folder (default models/emoji-default)
  --reference-size PX encode the prompt's images at PX x PX instead of the model's native side (the ViT's position
                      embeddings are interpolated): a multiple of its patch size, up to 4x the native side; more
                      pixels = more tokens per image (default model: 16 -> 16, 32 -> 64 (native), 64 -> 256).
                      The model was trained at its native side only
  --device NAME       cpu (default) or cuda
  --no-progress       no progress bar
  --debug             on errors, print the stack trace too
  -h, --help          this help
`;

export const INFO_HELP = `Usage: mumu info IMAGE.png [--json]

Prints the generation settings (prompt, seed, steps, guidance, sampler, model) that mumu stored in a PNG.
`;

const OPTIONS = {
  out: { type: 'string', short: 'o' },
  n: { type: 'string', short: 'n' },
  seed: { type: 'string' },
  steps: { type: 'string' },
  guidance: { type: 'string' },
  negative: { type: 'string' },
  sampler: { type: 'string' },
  eta: { type: 'string' },
  model: { type: 'string' },
  'reference-size': { type: 'string' },
  device: { type: 'string' },
  'no-progress': { type: 'boolean' },
} as const;

// A model folder is usable when it has model_index.json.
export function resolveModel(flag: string | undefined): string {
  if (flag === undefined) {
    if (!existsSync(join(DEFAULT_MODEL, 'model_index.json'))) {
      throw new Error(
        'no default model is shipped yet (models/emoji-default is missing): pass --model DIR with a trained mumu model folder',
      );
    }
    return DEFAULT_MODEL;
  }
  const dir = resolve(flag);
  if (!existsSync(dir)) throw new Error(`--model ${flag}: no such folder`);
  if (!existsSync(join(dir, 'model_index.json')))
    throw new Error(`--model ${flag}: not a mumu model folder (no model_index.json)`);
  return dir;
}

// Everything about the prompt that can be checked without the model: tags, files, images, emptiness.
async function precheckPrompt(prompt: string, label = ''): Promise<void> {
  try {
    const parts = parsePromptText(prompt);
    if (!label && isEmptyPrompt(parts)) throw new PromptError('is empty: write some text and/or <img:PATH> tags');
    for (const p of parts) if (p.kind === 'image') await checkImage(p.source, { where: p.where });
  } catch (e) {
    if (label && e instanceof PromptError) throw e.about(label);
    throw e;
  }
}

export async function runGenerate(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, { command: 'generate', help: GENERATE_HELP, options: OPTIONS, positionals: true });
  if (!parsed) return 0;
  const { values: v, positionals } = parsed;
  if (positionals.length === 0)
    throw new UsageError('missing the prompt, e.g. mumu generate "a <img:dog.png> dog"', 'generate');
  if (positionals.length > 1)
    throw new UsageError(
      `expected one prompt, got ${positionals.length} arguments (put the prompt in quotes)`,
      'generate',
    );
  const prompt = positionals[0]!;
  const out = resolve(v.out ?? 'mumu.png');
  if (!out.toLowerCase().endsWith('.png'))
    throw new UsageError(`--out must name a .png file, got '${v.out}'`, 'generate');
  const n = intFlag('n', v.n, 1, 64) ?? 1;
  const seed = intFlag('seed', v.seed, 0, 2 ** 48) ?? Math.floor(Math.random() * 2 ** 32);
  const steps = intFlag('steps', v.steps, 1, 1000) ?? 50;
  const guidance = floatFlag('guidance', v.guidance, 0, 100) ?? 6;
  const eta = floatFlag('eta', v.eta, 0, 1);
  const sampler = v.sampler ?? DEFAULT_SAMPLER;
  if (!isSamplerName(sampler))
    throw new UsageError(`--sampler must be ${samplerChoices()}, got '${sampler}'`, 'generate');
  const referenceSize = intFlag('reference-size', v['reference-size'], 1, 4096);
  const device = v.device ?? 'cpu';
  if (device !== 'cpu' && !device.startsWith('cuda'))
    throw new UsageError(`--device must be cpu or cuda, got '${device}'`, 'generate');

  await precheckPrompt(prompt);
  if (v.negative) await precheckPrompt(v.negative, 'negative prompt');
  const modelDir = resolveModel(v.model);

  const { MumuPipeline, generationInfo } = await import('../pipeline.ts');
  const quiet = v['no-progress'] || !process.stderr.isTTY;
  if (!quiet) process.stderr.write(`loading ${modelDir}\n`);
  let pipe;
  try {
    pipe = await MumuPipeline.fromPretrained(modelDir, { device, referenceSize });
  } catch (e) {
    if (e instanceof RangeError && referenceSize !== undefined)
      throw new UsageError(
        `--reference-size ${referenceSize}: ${e.message.replace(/^reference size \d+ px: /, '')}`,
        'generate',
      );
    throw e;
  }
  const bar = quiet
    ? null
    : new cliProgress.SingleBar(
        {
          format: 'generating |{bar}| {value}/{total} steps | {rate} it/s | ETA {eta_formatted}',
          stream: process.stderr,
          hideCursor: false,
          etaBuffer: 10,
        },
        cliProgress.Presets.shades_classic,
      );
  const started = performance.now();
  bar?.start(steps, 0, { rate: '-' });
  let result: GenerateResult;
  try {
    result = await pipe.generate(prompt, {
      numImages: n,
      seed,
      steps,
      guidanceScale: guidance,
      sampler,
      eta,
      negativePrompt: v.negative,
      onStep: ({ step }) =>
        bar?.update(step + 1, { rate: ((step + 1) / ((performance.now() - started) / 1000)).toFixed(2) }),
    });
  } finally {
    bar?.stop();
  }

  const modelName = v.model ?? 'models/emoji-default';
  const infoOf = (img: GenerateResult['images'][number]) => ({
    ...generationInfo(result, img, modelName),
    ...(referenceSize !== undefined ? { reference_size: String(referenceSize) } : {}),
  });
  await mkdir(dirname(out), { recursive: true });
  const written: string[] = [];
  if (n === 1) {
    await writeFile(out, await encodePng(result.images[0]!, infoOf(result.images[0]!)));
    written.push(out);
  } else {
    const { dir, name } = parsePath(out);
    for (const [i, img] of result.images.entries()) {
      const file = join(dir, `${name}-${i + 1}.png`);
      await writeFile(file, await encodePng(img, infoOf(img)));
      written.push(file);
    }
    const grid = imageGrid(result.images);
    const info = { ...infoOf(result.images[0]!), n: String(n), grid: `${grid.cols}x${grid.rows}` };
    await writeFile(out, await encodePng(grid, info));
    written.unshift(out);
  }
  const secs = result.timings.total / 1000;
  process.stderr.write(
    `seed ${seed}, ${steps} steps, guidance ${guidance}: ${n} image${n > 1 ? 's' : ''} in ${secs.toFixed(1)} s\n`,
  );
  process.stdout.write(written.join('\n') + '\n');
  return 0;
}

export async function runInfo(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, {
    command: 'info',
    help: INFO_HELP,
    options: { json: { type: 'boolean' } },
    positionals: true,
  });
  if (!parsed) return 0;
  if (parsed.positionals.length !== 1) throw new UsageError('expected one PNG file', 'info');
  const file = parsed.positionals[0]!;
  let bytes: Buffer;
  try {
    bytes = await readImageFile(file);
  } catch (e) {
    throw new Error(e instanceof ImageFileError ? e.message : `cannot read ${file} (${(e as Error).message})`);
  }
  let text: Record<string, string>;
  try {
    text = readText(bytes);
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
  if (!Object.keys(text).length) throw new Error(`${file} has no text metadata (not made by mumu?)`);
  if (parsed.values.json) process.stdout.write(JSON.stringify(text) + '\n');
  else for (const [k, val] of Object.entries(text)) process.stdout.write(`${k}: ${val}\n`);
  return 0;
}
