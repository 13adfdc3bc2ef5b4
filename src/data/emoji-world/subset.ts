// A carried subset of EmojiWorld, for a machine without the icon packages (a GPU host: scripts/gpu/pack.ts). One
// JSON file holds the whole concept catalog (so vocabularies and concept filters see what they see with the
// packages) and the SVG documents of the icons some runs draw: their concepts and the scene backgrounds, in every
// style that draws them. The SVG text is what the packages give, so resvg rasterizes the same pixels and the scenes
// are bit-identical with a run on the packages; a few MB instead of ~160 MB of icon sets and ~50 MB of emojibase.
//
// In use when MUMU_EMOJI_SUBSET names such a file (read at the first icon or catalog look-up), or after
// useEmojiSubset(); never otherwise, so a machine with the packages sees exactly what it always saw.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { packageConcepts, packageIconSvg, selectConcepts, SCENE_BACKGROUNDS, STYLES, type Concept, type ConceptFilter } from './catalog.ts';

export const EMOJI_SUBSET_ENV = 'MUMU_EMOJI_SUBSET';
const FORMAT = 'mumu-emoji-subset/1';

export interface EmojiSubset {
  format: typeof FORMAT;
  packages: Record<string, string>; // the package versions it was cut from
  concepts: Concept[]; // the whole catalog, as allConcepts() builds it from the packages
  icons: Record<string, string>; // "style/slug" -> SVG document (aliases and flips resolved)
}

// undefined: not looked at yet (the environment decides at first use); null: none in use.
let active: { subset: EmojiSubset; where: string } | null | undefined;

export function activeSubset(): EmojiSubset | null {
  if (active === undefined) {
    const file = process.env[EMOJI_SUBSET_ENV];
    active = file ? { subset: readEmojiSubset(file), where: `${EMOJI_SUBSET_ENV}=${file}` } : null;
  }
  return active?.subset ?? null;
}

// A subset object or file for every later look-up; null: back to the packages (the environment is not read again).
export function useEmojiSubset(s: EmojiSubset | string | null): void {
  active = s === null ? null : typeof s === 'string' ? { subset: readEmojiSubset(s), where: s } : { subset: s, where: 'the subset in use' };
}

export function subsetIconSvg(sub: EmojiSubset, style: string, slug: string): string {
  const svg = sub.icons[`${style}/${slug}`];
  if (svg === undefined) {
    const where = active?.subset === sub ? active.where : 'the EmojiWorld subset';
    throw new Error(`emoji '${slug}' in style ${style} is not in ${where}: pack it again with the configs that draw it (scripts/gpu/pack.ts)`);
  }
  return svg;
}

export function readEmojiSubset(file: string): EmojiSubset {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read the EmojiWorld subset ${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  const s = raw as Partial<EmojiSubset> | null;
  if (s?.format !== FORMAT || !Array.isArray(s.concepts) || typeof s.icons !== 'object' || s.icons === null) {
    throw new Error(`${file} is not an EmojiWorld subset (expected format '${FORMAT}', written by scripts/gpu/pack.ts)`);
  }
  return s as EmojiSubset;
}

// The subset that draws every concept the filters select (undefined: EmojiWorld's default groups) and every scene
// background, in every style that has them. Always cut from the packages.
export function buildEmojiSubset(filters: readonly (ConceptFilter | undefined)[]): EmojiSubset {
  // the packages' catalog: a subset in use must not decide what a new one holds
  const concepts = packageConcepts();
  const icons: Record<string, string> = {};
  for (const f of filters) {
    for (const c of selectConcepts(f, concepts)) for (const style of c.styles) icons[`${style}/${c.slug}`] ??= packageIconSvg(style, c.slug);
  }
  // scene backgrounds exist in every set (catalog.ts)
  for (const slug of Object.keys(SCENE_BACKGROUNDS)) for (const { id } of STYLES) icons[`${id}/${slug}`] = packageIconSvg(id, slug);
  const require = createRequire(import.meta.url);
  const packages: Record<string, string> = {};
  for (const name of [...STYLES.map((s) => `@iconify-json/${s.id}`), 'emojibase-data']) packages[name] = (require(`${name}/package.json`) as { version: string }).version;
  return { format: FORMAT, packages, concepts, icons };
}
