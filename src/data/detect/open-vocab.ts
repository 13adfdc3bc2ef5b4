// The paper grounds caption words with GroundingDINO (section 4). No open-vocabulary detector (GroundingDINO,
// OWL-ViT/OWLv2) ships on npm with its weights, and mumu downloads nothing at run time, so none is bundled.
// A user who has such a model implements `Detector` (types.ts) around it and passes it to the bootstrap; this
// loader only tells them so, with the one-line error the CLI prints.
import type { Detector } from './types.ts';

export function loadOpenVocabDetector(modelDir: string): Promise<Detector> {
  return Promise.reject(
    new Error(
      `no open-vocabulary detector ships with mumu (GroundingDINO/OWLv2 weights cannot be bundled); ` +
        `to use the model in ${modelDir}, implement the Detector interface from src/data/detect/types.ts and pass it to bootstrap`,
    ),
  );
}
