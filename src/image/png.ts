// Images in and out of files: decoding any format sharp reads, PNG encoding, and PNG text metadata. Generation
// settings travel inside the image (as AUTOMATIC1111 and ComfyUI do) so any output can be reproduced. tEXt chunks
// hold Latin-1 text; values outside Latin-1 (an emoji in a prompt) go in iTXt, UTF-8.
import { inflateSync } from 'node:zlib';
import sharp from 'sharp';
import type { RawImage, RgbImage } from './image.ts';
import { readImageFile } from './file.ts';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
export function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface PngChunk {
  type: string;
  data: Buffer;
}

export function readChunks(png: Uint8Array): PngChunk[] {
  const buf = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  if (buf.length < 8 || !buf.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG file');
  const chunks: PngChunk[] = [];
  for (let off = 8; off + 12 <= buf.length;) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    if (off + 12 + len > buf.length) throw new Error(`truncated PNG chunk ${type}`);
    chunks.push({ type, data: buf.subarray(off + 8, off + 8 + len) });
    off += 12 + len;
    if (type === 'IEND') break;
  }
  return chunks;
}

export function encodeChunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  Buffer.from(data).copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

const isLatin1 = (s: string) => /^[\x00-\xff]*$/.test(s);

function textChunk(key: string, value: string): Buffer {
  if (!/^[\x20-\x7e]{1,79}$/.test(key))
    throw new Error(`PNG text key '${key}' must be 1-79 printable ASCII characters`);
  if (isLatin1(value) && !value.includes('\0'))
    return encodeChunk('tEXt', Buffer.concat([Buffer.from(key + '\0', 'latin1'), Buffer.from(value, 'latin1')]));
  // iTXt: key \0 compression-flag compression-method language \0 translated-key \0 text
  return encodeChunk('iTXt', Buffer.concat([Buffer.from(key + '\0\0\0\0\0', 'latin1'), Buffer.from(value, 'utf8')]));
}

// Inserts text chunks right after IHDR (readers that stop early still see them).
export function withText(png: Uint8Array, text: Record<string, string>): Buffer {
  const chunks = readChunks(png);
  const extra = Object.entries(text).map(([k, v]) => textChunk(k, v));
  const parts: Buffer[] = [SIGNATURE];
  for (const c of chunks) {
    parts.push(encodeChunk(c.type, c.data));
    if (c.type === 'IHDR') parts.push(...extra);
  }
  return Buffer.concat(parts);
}

// Every tEXt, zTXt and iTXt entry.
export function readText(png: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  for (const { type, data } of readChunks(png)) {
    const z = data.indexOf(0);
    if (z < 0) continue;
    const key = data.toString('latin1', 0, z);
    if (type === 'tEXt') out[key] = data.toString('latin1', z + 1);
    else if (type === 'zTXt') out[key] = inflateSync(data.subarray(z + 2)).toString('latin1');
    else if (type === 'iTXt') {
      const compressed = data[z + 1] === 1;
      let p = data.indexOf(0, z + 3); // end of language tag
      p = data.indexOf(0, p + 1); // end of translated key
      const body = data.subarray(p + 1);
      out[key] = (compressed ? inflateSync(body) : body).toString('utf8');
    }
  }
  return out;
}

// RGB or RGBA pixels -> PNG bytes, with optional text metadata. compressionLevel 6 is sharp's default; the data
// shards use it too (lower is faster, and they are small anyway).
// `palette`: quantised to at most 256 colours (lossy, about 5x smaller on the eval and training grids): for pictures
// that are only looked at (docs), never for generated images or data.
export async function encodePng(
  img: RawImage,
  text: Record<string, string> = {},
  o: { compressionLevel?: number; palette?: boolean } = {},
): Promise<Buffer> {
  const png = await sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), {
    raw: { width: img.width, height: img.height, channels: img.channels },
  })
    .png({ compressionLevel: o.compressionLevel ?? 6, ...(o.palette ? { palette: true, quality: 95, effort: 7 } : {}) })
    .toBuffer();
  return Object.keys(text).length ? withText(png, text) : png;
}

// Decodes any format sharp reads (PNG, JPEG, WebP, ...) to RGB, honouring EXIF orientation. A string is a file path,
// read as readImageFile reads (regular files only, bounded).
export async function decodeImage(input: Uint8Array | string): Promise<RgbImage> {
  const bytes = typeof input === 'string' ? await readImageFile(input) : input;
  const { data, info } = await sharp(bytes)
    .rotate()
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decodeImage: expected 3 channels after conversion, got ${info.channels}`);
  return {
    width: info.width,
    height: info.height,
    channels: 3,
    data: new Uint8Array(data.buffer, data.byteOffset, data.length),
  };
}
