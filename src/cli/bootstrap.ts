// `mumu bootstrap`: build a multimodal-prompt dataset (paper section 4) as WebDataset shards, from EmojiWorld or
// from a folder of captioned photos, with a progress bar, a contact sheet and resume-after-kill.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { defaultConfig } from '../data/bootstrap/rules.ts';
import { contactSheet } from '../data/contact-sheet.ts';
import { EmojiWorld, type Split } from '../data/emoji-world/scene.ts';
import { HELDOUT_CONCEPT_PERCENT, HELDOUT_STYLES } from '../data/emoji-world/catalog.ts';
import { streamSamples, type EncodedSample } from '../data/shards/reader.ts';
import { runShards } from '../data/shards/run.ts';
import { readCaptions, type RunSpec } from '../data/sources.ts';
import { intFlag, parseCommand, UsageError } from './args.ts';

export const BOOTSTRAP_HELP = `Usage:
  mumu bootstrap --source emoji-world --n N --out DIR [--stage 1|2] [--size 64] [--seed 0] [--split train|test] [--workers 1]
  mumu bootstrap --source folder --images DIR --captions captions.jsonl --out DIR [--stage 1|2] [--size 64] [--seed 0] [--workers 1]

Builds multimodal prompts by inserting object crops before their words in each caption (MUMU section 4) and
writes WebDataset tar shards plus manifest.json and contact-sheet.png to DIR. Re-running the same command on the
same DIR resumes a killed run.

Options:
  --source       emoji-world (synthetic scenes, exact boxes) or folder (real photos, CenterNet + BlazeFace)
  --n            number of EmojiWorld samples
  --images       folder the captions' "image" paths are relative to
  --captions     JSON lines: {"image": "cat.jpg", "caption": "a cat on a sofa"}
  --out          output folder
  --stage        1: up to 3 crops + 30% canny/sketch; 2: one crop at twice the resolution (default 1)
  --size         target side in pixels (default 64)
  --seed         run seed (default 0)
  --split        emoji-world only: train, or test (held-out style and concepts) (default train)
  --workers      worker threads (default 1)
  --shard-size   samples per shard (default 1000)
  --sheet        samples on the contact sheet (default 16, 0 for none)
`;

export async function runBootstrap(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, {
    command: 'bootstrap',
    help: BOOTSTRAP_HELP,
    options: {
      source: { type: 'string' },
      n: { type: 'string' },
      out: { type: 'string' },
      stage: { type: 'string' },
      seed: { type: 'string' },
      workers: { type: 'string' },
      size: { type: 'string' },
      split: { type: 'string' },
      images: { type: 'string' },
      captions: { type: 'string' },
      'shard-size': { type: 'string' },
      sheet: { type: 'string' },
      quiet: { type: 'boolean' },
    },
  });
  if (!parsed) return 0;
  const v = parsed.values;
  const usage = (m: string) => new UsageError(m, 'bootstrap');
  if (!v.out) throw usage('--out DIR is required');
  const stage = (intFlag('stage', v.stage, 1, 2) ?? 1) as 1 | 2;
  const size = intFlag('size', v.size, 16, 4096) ?? 64;
  const seed = intFlag('seed', v.seed, 0, 2 ** 32 - 1) ?? 0;
  const workers = intFlag('workers', v.workers, 1, 64) ?? 1;
  const samplesPerShard = intFlag('shard-size', v['shard-size'], 1) ?? 1000;
  const sheetN = intFlag('sheet', v.sheet, 0, 256) ?? 16;
  const config = defaultConfig(stage, size);
  // Stage 2 on real photos is the paper's "single high resolution face or person crop" (section 5); EmojiWorld has
  // few people, so there it falls back to any object.
  config.stage2PersonOnly = v.source === 'folder';

  let spec: RunSpec;
  let splits: unknown;
  if (v.source === 'emoji-world') {
    const n = intFlag('n', v.n, 1);
    if (n === undefined) throw usage('--n N is required for --source emoji-world');
    if (v.split && v.split !== 'train' && v.split !== 'test')
      throw usage(`--split must be train or test, got '${v.split}'`);
    const split = (v.split ?? 'train') as Split;
    // Scenes are drawn larger than the target so crops keep detail: 2x for stage 1, 4x for stage 2's double-size crop.
    spec = {
      source: 'emoji-world',
      n,
      seed,
      size,
      stage,
      samplesPerShard,
      config,
      split,
      renderScale: stage === 2 ? 4 : 2,
    };
    const world = new EmojiWorld({ size, seed, split });
    splits = {
      split,
      trainStyles: world.trainStyles.map((s) => s.id),
      heldOutStyles: HELDOUT_STYLES,
      heldOutConceptRule: `hash("heldout:" + slug) % 100 < ${HELDOUT_CONCEPT_PERCENT}`,
      heldOutConcepts: world.heldOutConcepts.map((c) => c.slug),
      trainConcepts: world.trainConcepts.length,
    };
  } else if (v.source === 'folder') {
    if (!v.images || !v.captions) throw usage('--source folder needs --images DIR and --captions FILE');
    let lines;
    try {
      lines = await readCaptions(v.captions);
    } catch (e) {
      throw new Error(`cannot read captions file ${v.captions}: ${(e as Error).message}`);
    }
    if (lines.length === 0) throw new Error(`captions file ${v.captions} has no lines`);
    spec = {
      source: 'folder',
      n: lines.length,
      seed,
      size,
      stage,
      samplesPerShard,
      config,
      images: path.resolve(v.images),
      captions: path.resolve(v.captions),
    };
  } else {
    throw usage(`--source must be emoji-world or folder, got '${v.source ?? ''}'`);
  }

  const quiet = v.quiet || !process.stderr.isTTY;
  const bars = new cliProgress.MultiBar(
    {
      format: 'bootstrap |{bar}| {value}/{total} shards | {samples} samples | eta {eta_formatted}',
      hideCursor: true,
      clearOnComplete: false,
      stream: process.stderr,
      noTTYOutput: false,
    },
    cliProgress.Presets.shades_classic,
  );
  const numShards = Math.ceil(spec.n / samplesPerShard);
  const bar = quiet ? undefined : bars.create(numShards, 0, { samples: 0 });
  let samples = 0;
  const log = (line: string) => (bar ? bars.log(`${line}\n`) : process.stderr.write(`${line}\n`));
  let manifest;
  try {
    manifest = await runShards(spec, v.out, {
      workers,
      splits,
      log,
      onShard: (rec, done) => {
        samples += rec.samples;
        bar?.update(done, { samples });
      },
    });
  } finally {
    bars.stop();
  }

  const skipped =
    Object.entries(manifest.totals.skipped)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, n]) => `${n} ${k}`)
      .join(', ') || 'none';
  if (manifest.totals.samples === 0) throw new Error(`no samples produced from ${spec.n} inputs (skipped: ${skipped})`);

  if (sheetN > 0) {
    const picked: EncodedSample[] = [];
    for await (const s of streamSamples(v.out, { shuffleBuffer: 4 * sheetN, seed })) {
      picked.push(s);
      if (picked.length >= sheetN) break;
    }
    await writeFile(path.join(v.out, 'contact-sheet.png'), await contactSheet(picked));
  }
  process.stderr.write(
    `wrote ${manifest.totals.samples} samples (${manifest.totals.crops} conditioning images) in ${manifest.numShards} shards to ${v.out}; skipped: ${skipped}\n`,
  );
  return 0;
}
