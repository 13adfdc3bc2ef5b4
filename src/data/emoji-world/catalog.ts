// EmojiWorld's concepts and styles: the 7 iconify emoji sets joined by CLDR slug (`dog-face`), with labels,
// tags and groups from emojibase-data. This is the paper's content x style recipe in miniature (section 4,
// "synthetic data": each content is paired with many styles so the model learns to separate the two).
import { createRequire } from 'node:module';
import { hashString } from '../rng.ts';
import { activeSubset, subsetIconSvg } from './subset.ts';

const require = createRequire(import.meta.url);

export interface Style {
  id: string; // iconify prefix
  phrase: string; // how captions name it: "<phrase> style"
  license: string; // SPDX
}

// Licences as their iconify metadata and upstream repositories state them; docs/DATA.md credits each.
export const STYLES: readonly Style[] = [
  { id: 'noto', phrase: 'noto', license: 'Apache-2.0' },
  { id: 'twemoji', phrase: 'twemoji', license: 'CC-BY-4.0' },
  { id: 'openmoji', phrase: 'openmoji', license: 'CC-BY-SA-4.0' },
  { id: 'fluent-emoji-flat', phrase: 'fluent flat', license: 'MIT' },
  { id: 'fluent-emoji', phrase: 'fluent 3d', license: 'MIT' },
  { id: 'fluent-emoji-high-contrast', phrase: 'high contrast', license: 'MIT' },
  { id: 'emojione', phrase: 'emojione', license: 'CC-BY-4.0' },
];

// The split (docs/DATA.md). One whole style is never seen in training, to test style generalisation; emojione is
// the one with the fewest icons, so holding it out costs the least training coverage.
export const HELDOUT_STYLES: readonly string[] = ['emojione'];
// About this percent of concepts never appear in training. Membership is a hash of the slug, so it is stable
// when emojibase adds concepts or the concept filter changes: a held-out concept never becomes a training one.
export const HELDOUT_CONCEPT_PERCENT = 10;
export const isHeldOutConcept = (slug: string) => hashString(`heldout:${slug}`) % 100 < HELDOUT_CONCEPT_PERCENT;
export const isHeldOutStyle = (id: string) => HELDOUT_STYLES.includes(id);

// Emojibase groups that name concrete things; flags, symbols and skin-tone components make poor objects.
export const DEFAULT_GROUPS: readonly string[] = [
  'smileys-emotion', 'people-body', 'animals-nature', 'food-drink', 'travel-places', 'activities', 'objects',
];

// Full-bleed scene emoji used as backgrounds (never as objects), with their caption phrase. All exist in all 7 sets.
export const SCENE_BACKGROUNDS: Readonly<Record<string, string>> = {
  'night-with-stars': 'starry night',
  'milky-way': 'milky way',
  'sunrise-over-mountains': 'mountain sunrise',
  sunrise: 'sunrise',
  sunset: 'sunset',
  'cityscape-at-dusk': 'city at dusk',
  'bridge-at-night': 'bridge at night',
  'national-park': 'national park',
  'desert-island': 'desert island',
  'beach-with-umbrella': 'beach',
  foggy: 'foggy city',
  desert: 'desert',
  cityscape: 'city',
};

export interface Concept {
  slug: string;
  label: string; // emojibase's CLDR label, used in captions: "dog face"
  tags: string[]; // CLDR keywords: other words the object answers to ("dog", "puppy", ...)
  group: string;
  subgroup: string;
  styles: string[]; // ids of the sets that draw it
  heldOut: boolean;
}

interface IconifyIcon { body: string; width?: number; height?: number; left?: number; top?: number; hFlip?: boolean; vFlip?: boolean }
interface IconifyAlias { parent: string; hFlip?: boolean; vFlip?: boolean }
export interface IconifySet {
  prefix: string;
  icons: Record<string, IconifyIcon>;
  aliases?: Record<string, IconifyAlias>;
  width?: number;
  height?: number;
}

const sets = new Map<string, IconifySet>();
// JSON loads lazily: fluent-emoji alone is ~100 MB of SVG text, so a run that never draws it never parses it.
export function iconSet(id: string): IconifySet {
  let s = sets.get(id);
  if (!s) {
    if (!STYLES.some((st) => st.id === id)) throw new Error(`unknown emoji style '${id}' (known: ${STYLES.map((x) => x.id).join(', ')})`);
    s = require(`@iconify-json/${id}/icons.json`) as IconifySet;
    sets.set(id, s);
  }
  return s;
}

// Icons that make resvg 2.6.2 panic (a Rust panic aborts the whole process, so it cannot be caught): found by
// rasterizing every icon of every set; treated as absent from their set.
const RESVG_PANICS: ReadonlySet<string> = new Set(['noto/package', 'noto/rainbow-flag']);

// The iconify names of a set without parsing its icon bodies (cheap, for the catalog).
const nameCache = new Map<string, Set<string>>();
function iconNames(id: string): Set<string> {
  let names = nameCache.get(id);
  if (!names) {
    const s = iconSet(id);
    names = new Set([...Object.keys(s.icons), ...Object.keys(s.aliases ?? {})].filter((n) => !RESVG_PANICS.has(`${id}/${n}`)));
    nameCache.set(id, names);
  }
  return names;
}

// An SVG document for one icon, resolving iconify aliases (with their flips): from the carried subset when one is in
// use (subset.ts), else from the iconify package.
export function iconSvg(id: string, slug: string): string {
  const sub = activeSubset();
  return sub ? subsetIconSvg(sub, id, slug) : packageIconSvg(id, slug);
}

export function packageIconSvg(id: string, slug: string): string {
  const s = iconSet(id);
  let name = slug;
  let hFlip = false, vFlip = false;
  for (let hops = 0; !s.icons[name] && hops < 4; hops++) {
    const a = s.aliases?.[name];
    if (!a) throw new Error(`emoji '${slug}' is not in the ${id} set`);
    hFlip = hFlip !== !!a.hFlip;
    vFlip = vFlip !== !!a.vFlip;
    name = a.parent;
  }
  const icon = s.icons[name];
  if (!icon) throw new Error(`emoji '${slug}' is not in the ${id} set`);
  const w = icon.width ?? s.width ?? 16, h = icon.height ?? s.height ?? 16;
  const l = icon.left ?? 0, t = icon.top ?? 0;
  hFlip = hFlip !== !!icon.hFlip;
  vFlip = vFlip !== !!icon.vFlip;
  let body = icon.body;
  if (hFlip || vFlip) {
    const tx = hFlip ? 2 * l + w : 0, ty = vFlip ? 2 * t + h : 0;
    body = `<g transform="translate(${tx} ${ty}) scale(${hFlip ? -1 : 1} ${vFlip ? -1 : 1})">${body}</g>`;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="${l} ${t} ${w} ${h}" width="${w}" height="${h}">${body}</svg>`;
}

export const slugify = (label: string) =>
  label.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');

interface EmojibaseEntry { label: string; hexcode: string; tags?: string[]; group?: number; subgroup?: number }
interface EmojibaseGroups { groups: Record<string, string>; subgroups: Record<string, string> }

let catalog: Concept[] | undefined;
// Every emojibase concept (base forms, no skin tones) that at least one set draws: the carried subset's copy when one
// is in use (subset.ts), else built from emojibase and the iconify packages.
export function allConcepts(): Concept[] {
  return activeSubset()?.concepts ?? packageConcepts();
}

export function packageConcepts(): Concept[] {
  if (catalog) return catalog;
  const data = require('emojibase-data/en/data.json') as EmojibaseEntry[];
  const meta = require('emojibase-data/meta/groups.json') as EmojibaseGroups;
  // iconify's chars.json maps codepoints to the slug each set uses; it fixes labels whose naive slug differs
  // ("twelve o'clock" is `twelve-oclock`).
  const chars: Record<string, string> = { ...require('@iconify-json/twemoji/chars.json'), ...require('@iconify-json/noto/chars.json') };
  const out: Concept[] = [];
  const seen = new Set<string>();
  for (const e of data) {
    if (e.group === undefined) continue;
    const hex = e.hexcode.toLowerCase();
    const slug = chars[hex] ?? chars[hex.replace(/-fe0f/g, '')] ?? slugify(e.label);
    if (seen.has(slug) || slug in SCENE_BACKGROUNDS) continue;
    const styles = STYLES.map((s) => s.id).filter((id) => iconNames(id).has(slug));
    if (styles.length === 0) continue;
    seen.add(slug);
    out.push({
      slug,
      label: e.label.replace(/[:]/g, '').toLowerCase(),
      tags: e.tags ?? [],
      group: meta.groups[String(e.group)] ?? 'unknown',
      subgroup: meta.subgroups[String(e.subgroup)] ?? 'unknown',
      styles,
      heldOut: isHeldOutConcept(slug),
    });
  }
  catalog = out;
  return out;
}

export interface ConceptFilter {
  groups?: readonly string[]; // emojibase group names
  subgroups?: readonly string[]; // emojibase subgroup names (e.g. "animal-mammal"); with groups, either matches
  slugs?: readonly string[]; // an explicit list overrides groups
}

// `all`: the catalog to select from (the subset builder passes the packages' own)
export function selectConcepts(filter: ConceptFilter = {}, all: Concept[] = allConcepts()): Concept[] {
  if (filter.slugs) {
    const bySlug = new Map(all.map((c) => [c.slug, c]));
    return filter.slugs.map((s) => {
      const c = bySlug.get(s);
      if (!c) throw new Error(`unknown emoji concept '${s}'`);
      return c;
    });
  }
  const groups = filter.groups ?? (filter.subgroups ? [] : DEFAULT_GROUPS);
  const subgroups = filter.subgroups ?? [];
  return all.filter((c) => groups.includes(c.group) || subgroups.includes(c.subgroup));
}
