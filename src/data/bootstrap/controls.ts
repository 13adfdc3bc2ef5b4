// Whole-image control images for stage 1 (paper section 5: "30% of the time we additionally inserted an image
// of canny edge, depth, or sketch [58] of the full input image"). Canny is OpenCV's own (the wasm build on npm);
// the sketch is the classic colour-dodge pencil sketch; depth needs a monocular depth model that cannot ship.
import { createRequire } from 'node:module';
import { toRGBA, type RawImage } from '../../image/index.ts';

const require = createRequire(import.meta.url);

export type ControlKind = 'canny' | 'sketch' | 'depth';

// Canny hysteresis thresholds on 8-bit luma: ControlNet's defaults.
export const CANNY_LOW = 100;
export const CANNY_HIGH = 200;
// Blur radius of the pencil sketch, as a fraction of the image side.
export const SKETCH_BLUR = 0.04;

interface CvMat { data: Uint8Array; delete(): void }
interface OpenCV {
  Mat: new () => CvMat;
  matFromImageData(img: { data: Uint8Array | Uint8ClampedArray; width: number; height: number }): CvMat;
  cvtColor(src: CvMat, dst: CvMat, code: number): void;
  Canny(src: CvMat, dst: CvMat, lo: number, hi: number): void;
  COLOR_RGBA2GRAY: number;
  onRuntimeInitialized?: () => void;
}

let cvReady: Promise<{ cv: OpenCV }> | undefined;
// The emscripten module is a thenable whose then() hands back itself, so `await`ing it directly never settles:
// wait for onRuntimeInitialized and wrap the module in an object.
export function loadOpenCV(): Promise<{ cv: OpenCV }> {
  cvReady ??= new Promise((resolve) => {
    const cv = require('@techstark/opencv-js') as OpenCV;
    if (typeof (cv as { Mat?: unknown }).Mat === 'function') resolve({ cv });
    else cv.onRuntimeInitialized = () => resolve({ cv });
  });
  return cvReady;
}

const grayToRGB = (g: Uint8Array, width: number, height: number): RawImage => {
  const out = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = g[i]!;
  return { width, height, channels: 3, data: out };
};

// White edges on black, as ControlNet's canny conditioning.
export async function canny(img: RawImage, lo = CANNY_LOW, hi = CANNY_HIGH): Promise<RawImage> {
  const { cv } = await loadOpenCV();
  const rgba = toRGBA(img);
  const src = cv.matFromImageData({ data: rgba.data, width: img.width, height: img.height });
  const gray = new cv.Mat();
  const edges = new cv.Mat();
  try {
    cv.cvtColor(src, gray, cv.COLOR_RGBA2GRAY);
    cv.Canny(gray, edges, lo, hi);
    return grayToRGB(new Uint8Array(edges.data), img.width, img.height);
  } finally {
    src.delete();
    gray.delete();
    edges.delete();
  }
}

// Pencil sketch: luma colour-dodged by its own blurred negative, so flat areas go white and edges stay dark.
export function sketch(img: RawImage, blurFrac = SKETCH_BLUR): RawImage {
  const { width: w, height: h, channels: c } = img;
  const g = new Float32Array(w * h);
  for (let i = 0; i < w * h; i++) g[i] = 0.299 * img.data[i * c]! + 0.587 * img.data[i * c + 1]! + 0.114 * img.data[i * c + 2]!;
  const inv = g.map((v) => 255 - v);
  const r = Math.max(1, Math.round(blurFrac * Math.max(w, h)));
  const blurred = boxBlur(boxBlur(inv, w, h, r), w, h, r); // two box passes ~ a Gaussian
  const out = new Uint8Array(w * h);
  for (let i = 0; i < w * h; i++) out[i] = Math.min(255, Math.round((g[i]! * 255) / Math.max(1, 255 - blurred[i]!)));
  return grayToRGB(out, w, h);
}

// Separable box blur with clamped edges, O(w*h) per pass via running sums.
function boxBlur(src: Float32Array, w: number, h: number, r: number): Float32Array {
  const tmp = new Float32Array(w * h), out = new Float32Array(w * h);
  const n = 2 * r + 1;
  for (let y = 0; y < h; y++) {
    let acc = 0;
    for (let k = -r; k <= r; k++) acc += src[y * w + Math.min(w - 1, Math.max(0, k))]!;
    for (let x = 0; x < w; x++) {
      tmp[y * w + x] = acc / n;
      acc += src[y * w + Math.min(w - 1, x + r + 1)]! - src[y * w + Math.max(0, x - r)]!;
    }
  }
  for (let x = 0; x < w; x++) {
    let acc = 0;
    for (let k = -r; k <= r; k++) acc += tmp[Math.min(h - 1, Math.max(0, k)) * w + x]!;
    for (let y = 0; y < h; y++) {
      out[y * w + x] = acc / n;
      acc += tmp[Math.min(h - 1, y + r + 1) * w + x]! - tmp[Math.max(0, y - r) * w + x]!;
    }
  }
  return out;
}

// The paper's third control. Kept as a hook so the kind list stays the paper's; it fails loudly rather than
// silently producing something that is not depth.
export type DepthEstimator = (img: RawImage) => Promise<RawImage>;
export const depthUnavailable: DepthEstimator = () =>
  Promise.reject(new Error('depth control needs a monocular depth model (e.g. MiDaS/DPT), which cannot ship with mumu; pass a DepthEstimator or leave depth out of controlKinds'));

export async function controlImage(kind: ControlKind, img: RawImage, depth: DepthEstimator = depthUnavailable): Promise<RawImage> {
  switch (kind) {
    case 'canny': return canny(img);
    case 'sketch': return sketch(img);
    case 'depth': return depth(img);
  }
}
