// The multimodal prompt as stored in shards: text and image segments in reading order. An image segment points at
// one of the sample's conditioning images by index (file `img<index>.png` in the shard).
import type { Box } from '../../image/index.ts';
import type { ControlKind } from './controls.ts';
import type { ImageInput, PromptSegment } from '../../prompt/parse.ts';

export interface TextSegment { type: 'text'; text: string }
export interface ImageSegment {
  type: 'image';
  index: number; // into the sample's conditioning images
  role: 'object' | 'head' | 'control' | 'style'; // style: an image standing for the style's name (src/train/references.ts)
  phrase?: string; // the caption words the crop stands before
  box?: Box; // where it was cut from, in the (padded, square) source image
  score?: number;
  control?: ControlKind;
  augment?: string[]; // augmentation ops applied, if any
  restyle?: string; // the crop was cut from the same content drawn in this style (src/train/references.ts)
  background?: string; // the crop was cut from the same scene drawn on this plain colour (src/train/references.ts)
}
export type Segment = TextSegment | ImageSegment;

// Split the caption at each insertion point and put the image right before its words (paper section 4: "The image
// crops are then placed before their corresponding words in the text prompt"). Insertions at the same offset keep
// their given order.
export function insertImages(caption: string, insertions: readonly { at: number; segment: ImageSegment }[]): Segment[] {
  const sorted = insertions.map((x, k) => ({ ...x, k })).sort((a, b) => a.at - b.at || a.k - b.k);
  const out: Segment[] = [];
  let pos = 0;
  for (const { at, segment } of sorted) {
    if (at < pos || at > caption.length) throw new Error(`insertImages: offset ${at} out of order or range`);
    if (at > pos) out.push({ type: 'text', text: caption.slice(pos, at) });
    out.push(segment);
    pos = at;
  }
  if (pos < caption.length) out.push({ type: 'text', text: caption.slice(pos) });
  return out;
}

// The plain caption back from a prompt (image segments dropped).
export const promptText = (segments: readonly Segment[]) =>
  segments.map((s) => (s.type === 'text' ? s.text : '')).join('');

// A one-line rendering for logs and contact sheets: "a <img0> dog face and ...".
export const promptToString = (segments: readonly Segment[]) =>
  segments.map((s) => (s.type === 'text' ? s.text : `<img${s.index}${s.role === 'control' ? `:${s.control}` : s.role === 'head' || s.role === 'style' ? `:${s.role}` : ''}>`)).join('');

// The prompt as the pipeline takes it: text segments as strings, image segments as their images.
export const toPromptSegments = (segments: readonly Segment[], images: readonly (ImageInput | null)[]): PromptSegment[] =>
  segments.map((s) => (s.type === 'text' ? s.text : { image: images[s.index]! }));
