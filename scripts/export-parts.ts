// Writes parts of a model folder as float16 component folders (config.json + weights), the form a stage's trained
// parts are committed in (models/stages/<stage>/<part>/, docs/TRAINING.md) and a shipped model's base_unet/ takes.
// A config's `from: { <part>: "models/stages/<stage>/<part>" }` reads them back (as float32 for training), so a fresh
// machine continues the recipe from the repository.
//   node --import tsx scripts/export-parts.ts <model folder> <out folder> <part>[=<name>] ...
//   e.g. runs/t2i-base/model models/stages/t2i-base unet text_encoder scheduler   |   runs/t2i-base/model models/x unet=base_unet
import fs from 'node:fs';
import path from 'node:path';
import { CLASS_OF_PART, loadComponent, saveComponent } from '../src/models/pretrained.ts';

const [src, out, ...specs] = process.argv.slice(2);
if (!src || !out || !specs.length) {
  console.error(
    'usage: export-parts.ts <model folder> <out folder> <part>[=<name>] ...  (parts: vlm adapter unet vae text_encoder scheduler)',
  );
  process.exit(2);
}
if (!fs.existsSync(path.join(src, 'model_index.json'))) {
  console.error(`export-parts: ${src} is not a model folder (no model_index.json)`);
  process.exit(2);
}
for (const spec of specs) {
  const [part, name = part] = spec.split('=') as [string, string?];
  if (part === 'scheduler') {
    // the schedule and target the stage trained with, for the next stage's `from.scheduler`
    fs.mkdirSync(path.join(out, name), { recursive: true });
    fs.copyFileSync(
      path.join(src, 'scheduler', 'scheduler_config.json'),
      path.join(out, name, 'scheduler_config.json'),
    );
    console.log(`${src}/scheduler -> ${path.join(out, name)}`);
    continue;
  }
  if (!(part in CLASS_OF_PART)) {
    console.error(`export-parts: ${part} is not a model part (${Object.keys(CLASS_OF_PART).join(', ')})`);
    process.exit(2);
  }
  const m = loadComponent(path.join(src, part), CLASS_OF_PART[part as keyof typeof CLASS_OF_PART]);
  m.to('float16');
  // write beside, then swap: an interrupted export never leaves a half-written folder under the final name
  const dst = path.join(out, name);
  fs.rmSync(dst + '.new', { recursive: true, force: true });
  saveComponent(dst + '.new', m);
  fs.rmSync(dst, { recursive: true, force: true });
  fs.renameSync(dst + '.new', dst);
  console.log(`${src}/${part} -> ${dst} (float16)`);
}
