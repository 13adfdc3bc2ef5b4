// Matching caption words to detector phrases and class names: plurals and a small synonym list. The paper's
// GroundingDINO reads free text; a closed-vocabulary detector (COCO classes) needs this bridge instead.

const IRREGULAR: Readonly<Record<string, string>> = {
  people: 'person', men: 'man', women: 'woman', children: 'child', mice: 'mouse', geese: 'goose', feet: 'foot',
  teeth: 'tooth', oxen: 'ox', knives: 'knife', wolves: 'wolf', leaves: 'leaf', loaves: 'loaf', halves: 'half',
  sheep: 'sheep', fish: 'fish', deer: 'deer', skis: 'ski', buses: 'bus', glasses: 'glasses', scissors: 'scissors',
};
// Words ending in s that are not plurals.
const SINGULAR_S = new Set(['bus', 'glass', 'grass', 'dress', 'cactus', 'octopus', 'hippopotamus', 'bonus', 'news', 'series', 'species', 'lens', 'chess', 'bass', 'compass', 'princess', 'mattress', 'walrus', 'virus', 'iris', 'tennis', 'pancreas', 'christmas', 'us']);

export function singular(word: string): string {
  const w = word.toLowerCase();
  if (IRREGULAR[w]) return IRREGULAR[w];
  if (w.length <= 3 || SINGULAR_S.has(w) || w.endsWith('ss') || w.endsWith('us') || w.endsWith('is')) return w;
  if (w.endsWith('ies')) return w.slice(0, -3) + 'y';
  if (/(ches|shes|xes|zes|sses|oes)$/.test(w)) return w.slice(0, -2);
  if (w.endsWith('s')) return w.slice(0, -1);
  return w;
}

// COCO class (centernet's label) -> caption words that name it. Singular forms; plurals come from singular().
export const COCO_SYNONYMS: Readonly<Record<string, readonly string[]>> = {
  person: ['person', 'man', 'woman', 'boy', 'girl', 'child', 'kid', 'baby', 'lady', 'guy', 'people', 'human', 'astronaut', 'player', 'rider', 'skier', 'surfer', 'student', 'worker', 'pedestrian', 'gentleman', 'toddler', 'teenager', 'adult', 'athlete', 'chef', 'doctor', 'soldier', 'bride', 'groom'],
  bicycle: ['bicycle', 'bike', 'cycle'], car: ['car', 'automobile', 'sedan', 'taxi', 'suv', 'jeep'],
  motorcycle: ['motorcycle', 'motorbike', 'scooter', 'moped'], airplane: ['airplane', 'plane', 'aeroplane', 'jet', 'aircraft', 'airliner'],
  bus: ['bus', 'coach'], train: ['train', 'locomotive', 'tram'], truck: ['truck', 'lorry', 'van', 'pickup'],
  boat: ['boat', 'ship', 'sailboat', 'canoe', 'kayak', 'yacht', 'ferry'], 'traffic light': ['traffic light', 'stoplight'],
  'fire hydrant': ['fire hydrant', 'hydrant'], 'stop sign': ['stop sign'], 'parking meter': ['parking meter'], bench: ['bench'],
  bird: ['bird', 'parrot', 'pigeon', 'duck', 'owl', 'eagle', 'seagull', 'gull', 'chicken', 'hen', 'rooster', 'sparrow', 'penguin', 'swan', 'goose'],
  cat: ['cat', 'kitten', 'kitty', 'tabby', 'feline'], dog: ['dog', 'puppy', 'pup', 'doggy', 'hound', 'canine'],
  horse: ['horse', 'pony', 'foal', 'stallion', 'mare'], sheep: ['sheep', 'lamb', 'ram'], cow: ['cow', 'cattle', 'bull', 'calf', 'ox'],
  elephant: ['elephant'], bear: ['bear', 'teddy'], zebra: ['zebra'], giraffe: ['giraffe'],
  backpack: ['backpack', 'rucksack'], umbrella: ['umbrella', 'parasol'], handbag: ['handbag', 'purse', 'bag'], tie: ['tie', 'necktie'],
  suitcase: ['suitcase', 'luggage'], frisbee: ['frisbee'], skis: ['ski'], snowboard: ['snowboard'], 'sports ball': ['ball', 'football', 'soccer ball', 'basketball', 'baseball', 'tennis ball'],
  kite: ['kite'], 'baseball bat': ['bat', 'baseball bat'], 'baseball glove': ['glove', 'mitt'], skateboard: ['skateboard'], surfboard: ['surfboard'],
  'tennis racket': ['racket', 'racquet'], bottle: ['bottle'], 'wine glass': ['wine glass', 'glass'], cup: ['cup', 'mug', 'coffee', 'teacup'],
  fork: ['fork'], knife: ['knife'], spoon: ['spoon'], bowl: ['bowl'], banana: ['banana'], apple: ['apple'], sandwich: ['sandwich', 'burger'],
  orange: ['orange'], broccoli: ['broccoli'], carrot: ['carrot'], 'hot dog': ['hot dog', 'hotdog'], pizza: ['pizza'], donut: ['donut', 'doughnut'],
  cake: ['cake', 'cupcake'], chair: ['chair', 'stool', 'armchair'], couch: ['couch', 'sofa'], 'potted plant': ['plant', 'houseplant', 'potted plant'],
  bed: ['bed'], 'dining table': ['table', 'desk', 'dining table'], toilet: ['toilet'], tv: ['tv', 'television', 'monitor', 'screen'],
  laptop: ['laptop', 'notebook computer', 'computer'], mouse: ['computer mouse'], remote: ['remote', 'remote control'], keyboard: ['keyboard'],
  'cell phone': ['phone', 'cellphone', 'smartphone', 'mobile phone', 'cell phone'], microwave: ['microwave'], oven: ['oven', 'stove'],
  toaster: ['toaster'], sink: ['sink'], refrigerator: ['refrigerator', 'fridge'], book: ['book'], clock: ['clock'], vase: ['vase'],
  scissors: ['scissors'], 'teddy bear': ['teddy bear', 'teddy', 'stuffed animal'], 'hair drier': ['hair dryer', 'hair drier', 'hairdryer'], toothbrush: ['toothbrush'],
};

// Caption words with their character offsets, so an image can be inserted right before them.
export interface Token { word: string; start: number; end: number }
export function tokenize(text: string): Token[] {
  const out: Token[] = [];
  for (const m of text.matchAll(/[\p{L}\p{N}][\p{L}\p{N}'’-]*/gu)) out.push({ word: m[0].toLowerCase(), start: m.index!, end: m.index! + m[0].length });
  return out;
}

const norm = (phrase: string) => tokenize(phrase).map((t) => singular(t.word));

// Where `phrase` (or one of `alternatives`) first occurs in `caption` as whole words, plural-insensitive.
// Returns the character span, or undefined. Multi-word phrases must match word for word.
export function findPhrase(caption: string, phrase: string, alternatives: readonly string[] = [], from = 0): { start: number; end: number } | undefined {
  const toks = tokenize(caption).filter((t) => t.start >= from);
  const words = toks.map((t) => singular(t.word));
  // Longer phrases first, so "teddy bear" wins over "bear".
  const cands = [phrase, ...alternatives].map(norm).filter((c) => c.length > 0).sort((a, b) => b.length - a.length);
  let best: { start: number; end: number } | undefined;
  for (const c of cands)
    for (let i = 0; i + c.length <= words.length; i++)
      if (c.every((w, k) => words[i + k] === w)) {
        const span = { start: toks[i]!.start, end: toks[i + c.length - 1]!.end };
        if (!best || span.start < best.start) best = span;
        break;
      }
  return best;
}

// Does a caption phrase name this COCO class?
export function phraseMatchesClass(phrase: string, cocoClass: string): boolean {
  const p = norm(phrase).join(' ');
  const syn = COCO_SYNONYMS[cocoClass] ?? [cocoClass];
  return syn.some((s) => norm(s).join(' ') === p) || norm(cocoClass).join(' ') === p;
}

// The caption phrases a closed-vocabulary detector can ground: every caption word or word pair that names a class.
export function groundablePhrases(caption: string): string[] {
  const toks = tokenize(caption);
  const found = new Set<string>();
  const classes = Object.keys(COCO_SYNONYMS);
  // A word pair that names a class claims both words, so "teddy bear" is not also grounded as "bear".
  for (let i = 0; i < toks.length; i++) {
    const pair = i + 1 < toks.length ? `${toks[i]!.word} ${toks[i + 1]!.word}` : '';
    if (pair && classes.some((c) => phraseMatchesClass(pair, c))) {
      found.add(pair);
      i++;
    } else if (classes.some((c) => phraseMatchesClass(toks[i]!.word, c))) found.add(toks[i]!.word);
  }
  return [...found];
}

export const isPersonPhrase = (phrase: string) => phraseMatchesClass(phrase, 'person');
