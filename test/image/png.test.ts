// PNG text metadata round trip, chunk validity (sharp decodes the result), and the image grid.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { encodePng, readText, withText, readChunks, crc32, imageGrid } from '../../src/image/index.ts';

test('crc32 matches the standard check value', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
});

test('text metadata round trip: Latin-1 in tEXt, anything else in iTXt; pixels untouched', async () => {
  const data = Uint8Array.from({ length: 4 * 3 * 3 }, (_, i) => (i * 37) % 256);
  const text = {
    prompt: 'a <img:dog.png> dog, caf\u00e9 \\< 2',
    negative_prompt: 'blurry \u{1F436} \u72ac',
    seed: '42',
    steps: '50',
    guidance_scale: '6',
    model: 'models/emoji-default',
  };
  const png = await encodePng({ width: 4, height: 3, channels: 3, data }, text);
  assert.deepEqual(readText(png), text);
  const types = readChunks(png).map((c) => c.type);
  assert.deepEqual(types.slice(0, 1), ['IHDR']);
  assert.ok(types.includes('tEXt') && types.includes('iTXt'));
  const back = await sharp(png).raw().toBuffer({ resolveWithObject: true }); // libpng checks every CRC
  assert.deepEqual([back.info.width, back.info.height, back.info.channels], [4, 3, 3]);
  assert.deepEqual(new Uint8Array(back.data), data);
  // adding more text to a PNG that has some keeps both
  assert.deepEqual(readText(withText(png, { extra: 'x' })), { ...text, extra: 'x' });
  assert.throws(() => readText(Buffer.from('GIF89a')), /not a PNG/);
  assert.throws(() => withText(png, { 'bad\nkey': 'v' }), /printable ASCII/);
});

test('grid: ceil(sqrt(n)) columns, images in reading order, black gaps', () => {
  const im = (v: number) => ({ width: 2, height: 2, channels: 3 as const, data: new Uint8Array(12).fill(v) });
  const g = imageGrid([im(10), im(20), im(30)], 1);
  assert.deepEqual([g.width, g.height, g.cols, g.rows], [5, 5, 2, 2]);
  const px = (x: number, y: number) => g.data[(y * g.width + x) * 3];
  assert.deepEqual([px(0, 0), px(2, 0), px(3, 0), px(0, 3), px(3, 3)], [10, 0, 20, 30, 0]);
});
