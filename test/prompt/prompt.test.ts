// The multimodal prompt: parsing, image preparation (pad to square with black, resize), tokenization with OOV ->
// unk, and placement of each image's token run at its tag.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import sharp from 'sharp';
import {
  parsePrompt,
  parsePromptText,
  formatPrompt,
  PromptTokenizer,
  buildWordLevelTokenizer,
  encodePrompt,
  collatePrompts,
  prepareImage,
  toPixelValues,
  PromptError,
  SPECIAL,
  type PromptSpec,
} from '../../src/prompt/index.ts';
import { makeFixtures } from './fixtures.ts';

let dir = '';
before(async () => {
  dir = await makeFixtures();
});

const tokenizer = new PromptTokenizer(
  buildWordLevelTokenizer(['a', 'dog', 'and', 'rocket', 'in', 'style', ',', 'red', 'dog face']) as object,
);
const spec = (o: Partial<PromptSpec> = {}): PromptSpec => ({
  tokenizer,
  imageSize: 8,
  tokensPerImage: 3,
  maxImages: 3,
  ...o,
});
const IMG = tokenizer.imageTokenId!;
const id = (w: string) => tokenizer.idOf(w)!;

test('text form: tags, escapes, positions', () => {
  const parts = parsePromptText('a <img:dog.png> dog and a <img: rocket.png > rocket, 1 \\< 2');
  assert.deepEqual(
    parts.map((p) => (p.kind === 'text' ? p.text : `[${p.source as string}]`)),
    ['a ', '[dog.png]', ' dog and a ', '[rocket.png]', ' rocket, 1 < 2'],
  );
  assert.deepEqual(
    parts.map((p) => p.where),
    ['column 1', 'column 3', 'column 16', 'column 27', 'column 45'],
  );
  assert.equal(formatPrompt(parts), 'a <img:dog.png> dog and a <img:rocket.png> rocket, 1 \\< 2');
  assert.deepEqual(parsePromptText(''), []);
});

test('text form errors point at the offending column', () => {
  assert.throws(
    () => parsePromptText('a <img:dog.png dog'),
    (e: Error) => e instanceof PromptError && /^prompt column 3: unclosed image tag "<img:dog.png dog"/.test(e.message),
  );
  assert.throws(() => parsePromptText('a <img:x.png <img:y.png>'), /column 3: unclosed image tag/);
  assert.throws(() => parsePromptText('x <img:  >'), /column 3: empty image tag '<img:  >'/);
  assert.throws(
    () => parsePromptText('1 < 2'),
    /column 3: '<' opens an image tag, but "< 2" is not '<img:PATH>' \(write \\< for a literal '<'\)/,
  );
});

test('API form: strings, { text }, { image } of every kind; bad segments named', () => {
  const raw = { width: 1, height: 1, data: new Uint8Array(4) };
  const parts = parsePrompt(['a <b>', { image: 'x.png' }, { text: 'c' }, { image: Buffer.from([1]) }, { image: raw }]);
  assert.deepEqual(
    parts.map((p) => p.kind),
    ['text', 'image', 'text', 'image', 'image'],
  );
  assert.equal((parts[0] as { text: string }).text, 'a <b>'); // literal: no tag parsing in the API form
  assert.equal(formatPrompt(parts), 'a \\<b><img:x.png>c<img:#2><img:#3>');
  assert.throws(() => parsePrompt(['ok', { image: 42 } as never]), /prompt segment 2: an image must be a file path/);
  assert.throws(
    () => parsePrompt([{ foo: 1 } as never]),
    /prompt segment 1: expected a string, \{ text \} or \{ image \}/,
  );
});

test('tokenizer: OOV words and typed special tokens become unk; builder dedupes phrases', () => {
  assert.equal(tokenizer.unkId, 1);
  assert.deepEqual([tokenizer.padId, tokenizer.bosId, tokenizer.eosId, tokenizer.imageTokenId], [0, 2, 3, 4]);
  assert.equal(tokenizer.idOf(SPECIAL.image), 4);
  assert.deepEqual(tokenizer.encodeText('A dog, a CAT'), [id('a'), id('dog'), id(','), id('a'), tokenizer.unkId]);
  assert.deepEqual(tokenizer.encodeText('<image> [BOS] face'), [tokenizer.unkId, tokenizer.unkId, id('face')]);
  assert.equal(tokenizer.vocabSize, 5 + 9); // "dog face" adds only "face"
});

test('images are padded to a square with black and resized', async () => {
  const im = await prepareImage('red.png', 8, { cwd: dir }); // 40x20 -> content 8x4, 2 black rows above and below
  assert.equal(im.rgb.length, 8 * 8 * 3);
  const px = (x: number, y: number) => [...im.rgb.subarray((y * 8 + x) * 3, (y * 8 + x) * 3 + 3)];
  assert.deepEqual(px(3, 0), [0, 0, 0]);
  assert.deepEqual(px(3, 7), [0, 0, 0]);
  assert.deepEqual(px(3, 4), [255, 0, 0]);
  assert.deepEqual([im.originalWidth, im.originalHeight], [40, 20]);
  // RGBA pixels: transparency flattens onto black, like the padding
  const rgba = new Uint8Array([0, 255, 0, 255, 0, 255, 0, 0]);
  const p2 = await prepareImage({ width: 2, height: 1, data: rgba }, 2);
  // one row of content, one of padding (sharp centres with the odd pixel below)
  assert.deepEqual([...p2.rgb], [0, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  const jpg = await prepareImage(await sharp(join(dir, 'blue.jpg')).toBuffer(), 4);
  assert.ok(jpg.rgb[2]! > 200);
  const webp = await prepareImage('green.webp', 4, { cwd: dir });
  assert.ok(webp.rgb[(1 * 4 + 1) * 3 + 1]! > 200);
  const pv = toPixelValues([im]);
  assert.deepEqual(pv.shape, [1, 3, 8, 8]);
  assert.deepEqual([pv.select(1, 0).amax().item(), pv.amin().item()], [1, -1]);
});

test('bad images: each case says what is wrong and where', async () => {
  const cases: [unknown, RegExp][] = [
    ['missing.png', /prompt column 3: image file 'missing.png' not found \(looked for .*missing.png\)/],
    ['folder.png', /column 3: image 'folder.png' is a folder/],
    ['notes.txt', /column 3: 'notes.txt' is not an image sharp can read/],
    ['empty.png', /column 3: 'empty.png' is an empty file/],
    ['huge.png', /column 3: 'huge.png' is over the 100 megapixel limit|is 20000x20000, over the 100 megapixel limit/],
  ];
  for (const [path, re] of cases)
    await assert.rejects(encodePrompt(`a <img:${path as string}> dog`, spec(), { cwd: dir }), re);
  await assert.rejects(
    encodePrompt(['a', { image: { width: 0, height: 5, data: new Uint8Array(0) } }], spec()),
    /segment 2: image pixels are 0x5/,
  );
  await assert.rejects(
    encodePrompt([{ image: { width: 20000, height: 20000, data: new Uint8Array(4) } }], spec()),
    /segment 1: image pixels are 20000x20000, over the 100 megapixel limit/,
  );
  await assert.rejects(
    encodePrompt([{ image: { width: 2, height: 2, data: new Uint8Array(3) } }], spec()),
    /3 bytes do not make 2x2x4/,
  );
  await assert.rejects(
    encodePrompt([{ image: Buffer.from('GIF89a nonsense') }], spec()),
    /segment 1: the image data (is not an image|could not be decoded)/,
  );
});

test('too many images and the empty prompt', async () => {
  await assert.rejects(
    encodePrompt('<img:red.png> <img:red.png> and <img:red.png>', spec({ maxImages: 2 }), { cwd: dir }),
    /prompt column 33: has 3 images; this model takes at most 2/,
  );
  await assert.rejects(encodePrompt('', spec()), /prompt: is empty/);
  await assert.rejects(encodePrompt('   ', spec()), /prompt: is empty/);
  const empty = await encodePrompt('', spec(), { allowEmpty: true });
  assert.deepEqual(empty.inputIds, [tokenizer.bosId]);
  await assert.rejects(encodePrompt('a dog and a dog', spec({ maxLength: 4 })), /is 6 tokens .* at most 4/);
});

test("the k-th image's tokens sit at the k-th tag; swapping images swaps them", async () => {
  const e = await encodePrompt('a <img:red.png> dog and a <img:blue.jpg> rocket', spec(), { cwd: dir });
  const B = tokenizer.bosId!;
  const expected = [B, id('a'), IMG, IMG, IMG, id('dog'), id('and'), id('a'), IMG, IMG, IMG, id('rocket')];
  assert.deepEqual(e.inputIds, expected);
  assert.deepEqual(e.imageSpans, [
    { start: 2, length: 3 },
    { start: 8, length: 3 },
  ]);
  assert.ok(e.images[0]!.rgb.some((v, i) => i % 3 === 0 && v > 200)); // red first
  const swapped = await encodePrompt('a <img:blue.jpg> dog and a <img:red.png> rocket', spec(), { cwd: dir });
  assert.deepEqual(
    swapped.images.map((i) => i.rgb),
    [e.images[1]!.rgb, e.images[0]!.rgb],
  );
  // moving an image moves its run
  const moved = await encodePrompt('<img:red.png> a dog and a rocket <img:blue.jpg>', spec(), { cwd: dir });
  assert.deepEqual(moved.imageSpans, [
    { start: 1, length: 3 },
    { start: 9, length: 3 },
  ]);
  assert.deepEqual(moved.inputIds.slice(1, 4), [IMG, IMG, IMG]);
  // batching: right padding, mask, images in prompt order
  const batch = collatePrompts([e, empty(), moved], { tokenizer });
  assert.deepEqual(batch.inputIds.shape, [3, 12]);
  assert.deepEqual(batch.imagesPerPrompt, [2, 0, 2]);
  assert.deepEqual(batch.pixelValues!.shape, [4, 3, 8, 8]);
  assert.deepEqual((batch.attentionMask.toList() as number[][])[1], [1, ...Array(11).fill(0)]);
  assert.deepEqual((batch.inputIds.toList() as number[][])[1], [B, ...Array(11).fill(tokenizer.padId)]);
  assert.deepEqual((batch.inputIds.toList() as number[][])[0], expected);
  function empty() {
    return { inputIds: [B], imageSpans: [], images: [], text: '' };
  }
});
