// Small images written to a temporary folder, shared by the prompt, pipeline and CLI tests.
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { encodeChunk } from '../../src/image/index.ts';

export const solid = (w: number, h: number, rgb: [number, number, number]) =>
  sharp({ create: { width: w, height: h, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });

// A PNG whose header claims width x height but which holds no real pixels: cheap to make, huge to decode.
export function hugePngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    encodeChunk('IHDR', ihdr),
    encodeChunk('IDAT', Buffer.from([0x78, 0x9c, 3, 0, 0, 0, 0, 1])),
    encodeChunk('IEND', Buffer.alloc(0)),
  ]);
}

export async function makeFixtures(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'mumu-prompt-'));
  await solid(40, 20, [255, 0, 0]).png().toFile(join(dir, 'red.png'));
  await solid(16, 16, [0, 0, 255]).jpeg().toFile(join(dir, 'blue.jpg'));
  await solid(20, 30, [0, 255, 0]).webp({ lossless: true }).toFile(join(dir, 'green.webp'));
  writeFileSync(join(dir, 'notes.txt'), 'this is not an image\n');
  writeFileSync(join(dir, 'empty.png'), '');
  writeFileSync(join(dir, 'huge.png'), hugePngHeader(20000, 20000));
  mkdirSync(join(dir, 'folder.png'));
  return dir;
}
