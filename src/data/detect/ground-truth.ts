// EmojiWorld's renderer knows every box, so its "detector" is exact: the paper relied on GroundingDINO being
// reliable on synthetic images (section 4); here reliability is by construction.
import type { Box, RawImage } from '../../image/index.ts';
import type { Detection, Detector } from './types.ts';
import { findPhrase } from './words.ts';

export interface GroundTruthObject {
  phrase: string;
  words?: readonly string[];
  box: Box;
}

export class GroundTruthDetector implements Detector {
  readonly name = 'ground-truth';
  constructor(private readonly objects: readonly GroundTruthObject[]) {}

  // A requested phrase matches an object when it names the object's phrase or one of its other words
  // (plural-insensitive), e.g. "dogs" or "puppy" for the `dog face` emoji.
  async detect(_image: RawImage, phrases: readonly string[]): Promise<Detection[]> {
    const out: Detection[] = [];
    for (const phrase of phrases)
      for (const o of this.objects)
        if (findPhrase(phrase, o.phrase, o.words ?? [])) out.push({ phrase, box: { ...o.box }, score: 1, label: o.phrase });
    return out;
  }

  phrasesFor(): string[] {
    return this.objects.map((o) => o.phrase);
  }
}
