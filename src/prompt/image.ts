// Conditioning images: decoded, flattened onto black, padded to a square with black and resized to the encoder's
// input size (paper section 5: "All images were padded to square resolutions with black pixels. Image crops were
// always resized up or down to meet their target resolution").
import { resolve } from 'node:path';
import sharp from 'sharp';
import type { Sharp, Metadata } from 'sharp';
import { readImageFile, ImageFileError } from '../image/index.ts';
import { PromptError, type ImageInput, type PixelsInput } from './parse.ts';

// Refused outright above this many pixels (a 10000 x 10000 photo); anything smaller is simply downscaled, since every
// image ends at the encoder's size (tens to hundreds of pixels) anyway.
export const MAX_INPUT_PIXELS = 100_000_000;

// RGB, row-major, size x size.
export interface PreparedImage {
  size: number;
  rgb: Uint8Array;
  originalWidth: number;
  originalHeight: number;
}

const describe = (src: ImageInput) =>
  typeof src === 'string'
    ? `'${src}'`
    : src instanceof Uint8Array
      ? `the image data`
      : `the ${src.width}x${src.height} pixels`;

// A reference named by path: read as src/image reads user-named files (regular files only, bounded in bytes).
async function readReference(path: string, cwd: string, where: string): Promise<Buffer> {
  const full = resolve(cwd, path);
  try {
    return await readImageFile(full);
  } catch (e) {
    if (!(e instanceof ImageFileError)) throw e;
    if (e.detail === 'not found') throw new PromptError(`image file '${path}' not found (looked for ${full})`, where);
    throw new PromptError(`image '${path}' ${e.detail}`, where);
  }
}

function rawInput(img: PixelsInput, where: string): Sharp {
  const { width, height } = img;
  const channels = img.channels ?? 4;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new PromptError(`image pixels are ${width}x${height}: an image needs a positive width and height`, where);
  }
  if (width * height > MAX_INPUT_PIXELS) {
    throw new PromptError(
      `image pixels are ${width}x${height}, over the ${MAX_INPUT_PIXELS / 1e6} megapixel limit`,
      where,
    );
  }
  if (img.data.length !== width * height * channels) {
    throw new PromptError(`image pixels: ${img.data.length} bytes do not make ${width}x${height}x${channels}`, where);
  }
  return sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.length), {
    raw: { width, height, channels },
  });
}

// Reads and validates an image without decoding its pixels: everything that can be wrong with an input image is
// reported here, with the prompt position.
async function openImage(
  src: ImageInput,
  cwd: string | undefined,
  where: string,
): Promise<{ img: Sharp; w: number; h: number }> {
  if (!(typeof src === 'string' || src instanceof Uint8Array))
    return { img: rawInput(src, where), w: src.width, h: src.height };
  const bytes = typeof src === 'string' ? await readReference(src, cwd ?? process.cwd(), where) : Buffer.from(src);
  if (bytes.length === 0) throw new PromptError(`${describe(src)} is an empty file, not an image`, where);
  const img = sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' });
  let meta: Metadata;
  try {
    meta = await img.metadata();
  } catch (e) {
    const msg = (e as Error).message;
    if (/pixel limit/i.test(msg))
      throw new PromptError(`${describe(src)} is over the ${MAX_INPUT_PIXELS / 1e6} megapixel limit`, where);
    throw new PromptError(
      `${describe(src)} is not an image sharp can read (PNG, JPEG, WebP, GIF, TIFF, AVIF or SVG)`,
      where,
    );
  }
  const [w, h] = [meta.autoOrient?.width ?? meta.width ?? 0, meta.autoOrient?.height ?? meta.height ?? 0];
  if (!w || !h) throw new PromptError(`${describe(src)} has zero size (${w}x${h})`, where);
  if (w * h > MAX_INPUT_PIXELS)
    throw new PromptError(`${describe(src)} is ${w}x${h}, over the ${MAX_INPUT_PIXELS / 1e6} megapixel limit`, where);
  return { img: img.rotate(), w, h }; // rotate(): apply EXIF orientation, as a viewer would show it
}

export async function checkImage(
  src: ImageInput,
  o: { cwd?: string; where?: string } = {},
): Promise<{ width: number; height: number }> {
  const { w, h } = await openImage(src, o.cwd, o.where ?? 'image');
  return { width: w, height: h };
}

export async function prepareImage(
  src: ImageInput,
  size: number,
  o: { cwd?: string; where?: string } = {},
): Promise<PreparedImage> {
  const where = o.where ?? 'image';
  const { img, w, h } = await openImage(src, o.cwd, where);
  try {
    // 'contain' on a black background is pad-to-square-then-resize (centred), done in one resampling pass.
    const { data } = await img
      .flatten({ background: { r: 0, g: 0, b: 0 } })
      .resize(size, size, { fit: 'contain', background: { r: 0, g: 0, b: 0, alpha: 1 } })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (data.length !== size * size * 3) throw new Error(`decoded ${data.length} bytes`);
    return {
      size,
      rgb: new Uint8Array(data.buffer, data.byteOffset, data.length),
      originalWidth: w,
      originalHeight: h,
    };
  } catch (e) {
    if (e instanceof PromptError) throw e;
    throw new PromptError(`${describe(src)} could not be decoded (${(e as Error).message})`, where);
  }
}
