// The paper's bootstrapping rules (sections 4 and 5), each a named constant, gathered in one config so a run's
// manifest records exactly what made its data.
import type { RGB } from '../../image/index.ts';
import type { ControlKind } from './controls.ts';

// "All images were padded to square resolutions with black pixels." (section 5)
export const PAD_COLOR: RGB = [0, 0, 0];
// "We filtered out crops with total area less than 150x150 pixels or larger than 75% of the image." (section 4)
// The paper's images are 1024 px; the threshold scales with the image: (150/1024)^2 ~ 2.15% of side^2.
export const PAPER_SIDE = 1024;
export const MIN_CROP_SIDE_AT_1024 = 150;
export const MIN_CROP_AREA_FRAC = (MIN_CROP_SIDE_AT_1024 / PAPER_SIDE) ** 2;
export const MAX_CROP_AREA_FRAC = 0.75;
// "At train time, we inserted at most 3 crops per prompt before their corresponding words." (section 4)
export const MAX_CROPS = 3;
// "we also replaced 70% of person crops with a crop of the person's head" (sections 4, 5)
export const HEAD_CROP_PROB = 0.7;
// A face detector's box covers the face; the head is that box grown by this factor around its centre,
// shifted up by HEAD_SHIFT_UP of the face height (hair and forehead sit above the detected face).
export const HEAD_BOX_SCALE = 1.6;
export const HEAD_SHIFT_UP = 0.15;
// "Image augmentation of random crops, random flips, Gaussian noise, and grayscaling was used on 20% of the
// conditioning images." (section 5) Each augmented image gets each op with AUGMENT_OP_PROB (at least one).
export const AUGMENT_PROB = 0.2;
export const AUGMENT_OP_PROB = 0.5;
export const AUGMENT_MIN_CROP_SIDE = 0.7; // random crop keeps at least this fraction of each side
export const AUGMENT_NOISE_SIGMA = 12; // on the 0..255 scale
// "30% of the time we additionally inserted an image of canny edge, depth, or sketch of the full input image."
// (section 5, stage 1) Depth needs a model that cannot ship, so it is off by default (controls.ts).
export const CONTROL_PROB = 0.3;
export const CONTROL_KINDS: readonly ControlKind[] = ['canny', 'sketch'];
// Stage 1 images use 324 tokens and stage 2's single crop 1296 (section 5): 4x the tokens, 2x the side.
export const STAGE2_CROP_SCALE = 2;

export interface BootstrapConfig {
  stage: 1 | 2;
  padColor: RGB;
  minCropAreaFrac: number;
  maxCropAreaFrac: number;
  maxCrops: number;
  headCropProb: number;
  headBoxScale: number;
  headShiftUp: number;
  augmentProb: number;
  augmentOpProb: number;
  augmentMinCropSide: number;
  augmentNoiseSigma: number;
  controlProb: number;
  controlKinds: readonly ControlKind[];
  controlPosition: 'start' | 'end'; // the paper does not say where; we put it after the caption by default
  cropSize: number; // side every conditioning image is resized to ("resized up or down to meet their target resolution")
  stage2PersonOnly: boolean; // stage 2 keeps only person/face crops (real photos); EmojiWorld falls back to any object
}

export function defaultConfig(stage: 1 | 2, cropSize: number): BootstrapConfig {
  return {
    stage,
    padColor: PAD_COLOR,
    minCropAreaFrac: MIN_CROP_AREA_FRAC,
    maxCropAreaFrac: MAX_CROP_AREA_FRAC,
    maxCrops: stage === 1 ? MAX_CROPS : 1,
    headCropProb: HEAD_CROP_PROB,
    headBoxScale: HEAD_BOX_SCALE,
    headShiftUp: HEAD_SHIFT_UP,
    augmentProb: AUGMENT_PROB,
    augmentOpProb: AUGMENT_OP_PROB,
    augmentMinCropSide: AUGMENT_MIN_CROP_SIDE,
    augmentNoiseSigma: AUGMENT_NOISE_SIGMA,
    controlProb: stage === 1 ? CONTROL_PROB : 0,
    controlKinds: CONTROL_KINDS,
    controlPosition: 'end',
    cropSize: stage === 1 ? cropSize : cropSize * STAGE2_CROP_SCALE,
    stage2PersonOnly: false,
  };
}
