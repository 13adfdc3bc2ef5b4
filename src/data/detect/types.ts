// One interface for every detector: the renderer's ground truth, a closed-vocabulary real detector, or an
// open-vocabulary one a user supplies (paper section 4 used GroundingDINO; none can ship with mumu).
import type { Box, RawImage } from '../../image/index.ts';

export interface Detection {
  phrase: string; // the caption phrase this box answers to (one of the phrases asked for)
  box: Box; // pixels of the image passed in
  score: number; // detector confidence in [0, 1]
  label?: string; // the detector's own class name, when it has one
}

export interface Detector {
  readonly name: string;
  // Boxes for the given caption phrases; phrases nothing was found for are simply absent.
  detect(image: RawImage, phrases: readonly string[]): Promise<Detection[]>;
  // Faces, for the person -> head rule (paper section 4). Detectors without a face model leave it out.
  faces?(image: RawImage): Promise<{ box: Box; score: number }[]>;
  // Which phrases of a caption this detector can ground at all (closed vocabularies); default: ask for all nouns.
  phrasesFor?(caption: string): string[];
  close?(): Promise<void>;
}
