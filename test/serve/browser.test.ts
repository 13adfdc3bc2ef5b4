// The page of `mumu serve` in a real browser (Debian's chromium through playwright-core): drop two images into the
// prompt at two positions, generate, watch the progress bar and the image arrive, cancel a job, check the segments
// the page sent, and drop the result PNG back to load its prompt, references and settings.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Page } from 'playwright-core';
import { serve, call, type Served } from './helpers.ts';
import { chromiumSkipReason, launchChromium, dropFiles, pointBefore } from './browser.ts';
import { makeTinyModel } from '../pipeline/tiny-model.ts';
import { solid } from '../prompt/fixtures.ts';

const skip = chromiumSkipReason();
let s: Served,
  dir = '',
  browser: Awaited<ReturnType<typeof launchChromium>>,
  page: Page;
const pageErrors: string[] = [];

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'mumu-browser-'));
  await solid(40, 20, [255, 0, 0]).png().toFile(join(dir, 'red.png'));
  await solid(24, 24, [0, 0, 255]).png().toFile(join(dir, 'blue.png'));
  s = await serve(['--model', await makeTinyModel(), '--out', join(dir, 'out')]);
  browser = await launchChromium();
  page = await browser.context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && pageErrors.push(m.text()));
  await page.addInitScript(recordRequests);
  await page.goto(s.url);
  await page.waitForSelector('body[data-ready=true]');
});
after(async () => {
  await browser?.close();
  await s?.stop();
});

// What the page sends: its fetch calls' multipart `request` fields, recorded in the page (the browser does not hand
// multipart bodies with files to the DevTools protocol).
const recordRequests = () => {
  const sent: unknown[] = [];
  (window as unknown as { sentRequests: unknown[] }).sentRequests = sent;
  const original = window.fetch;
  window.fetch = (input, init) => {
    if (init?.body instanceof FormData) sent.push(JSON.parse(String(init.body.get('request'))));
    return original(input, init);
  };
};
const sentRequests = (p: Page) => p.evaluate(() => (window as unknown as { sentRequests: unknown[] }).sentRequests);

// An <img> is in the page before its bytes have arrived and decoded: wait for that before reading its size (a loaded
// CI machine read naturalWidth 0 from a result image that had just appeared).
const imagesLoaded = (p: Page, sel: string, timeout = 30_000) =>
  p.waitForFunction(
    (q) => {
      const imgs = [...document.querySelectorAll<HTMLImageElement>(q)];
      return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);
    },
    sel,
    { timeout },
  );

// An editor's content in order: thumbnails as '[img]', the text between them (adjacent text nodes joined).
const editorParts = (p: Page, sel: string) =>
  p.evaluate((q) => {
    const out: string[] = [];
    for (const n of document.querySelector(q)!.childNodes) {
      const chip = n instanceof HTMLElement && n.dataset.chip !== undefined;
      if (!chip && out.length && out[out.length - 1] !== '[img]') out[out.length - 1] += n.textContent ?? '';
      else out.push(chip ? '[img]' : (n.textContent ?? ''));
    }
    return out.filter((x) => x !== '');
  }, sel);

test(
  'drop two images into the prompt, generate, see progress and the image; the page sends the segments in order',
  { skip: skip ?? false },
  async () => {
    await page.click('#prompt');
    await page.keyboard.type('a dog and a rocket on the night sky');
    const p1 = await pointBefore(page, '#prompt', 'dog');
    await dropFiles(page, [join(dir, 'red.png')], p1.x, p1.y);
    const p2 = await pointBefore(page, '#prompt', 'rocket');
    await dropFiles(page, [join(dir, 'blue.png')], p2.x, p2.y);
    assert.deepEqual(await editorParts(page, '#prompt'), [
      'a ',
      '[img]',
      'dog and a ',
      '[img]',
      'rocket on the night sky',
    ]);
    // thumbnails show the dropped pixels
    assert.equal(await page.locator('#prompt .chip img').count(), 2);
    await imagesLoaded(page, '#prompt .chip img');
    assert.deepEqual(
      await page
        .locator('#prompt .chip img')
        .evaluateAll((imgs) => imgs.map((i) => (i as HTMLImageElement).naturalWidth)),
      [40, 24],
    );

    await page.fill('#settings [name=steps]', '60');
    await page.fill('#settings [name=seed]', '11');
    const posted = page.waitForResponse((r) => r.url().endsWith('/api/generations') && r.request().method() === 'POST');
    await page.click('#generate');
    assert.equal((await posted).status(), 202);
    assert.deepEqual(await sentRequests(page), [
      {
        prompt: [
          { text: 'a ' },
          { upload: 'image1' },
          { text: 'dog and a ' },
          { upload: 'image2' },
          { text: 'rocket on the night sky' },
        ],
        steps: 60,
        guidance: 6,
        seed: 11,
        n: 1,
        sampler: 'ddim',
      },
    ]);
    // progress: the bar moves while the job samples
    await page.waitForFunction(
      () => {
        const bar = document.querySelector<HTMLProgressElement>('#active progress');
        return bar !== null && bar.value > 0 && bar.value < bar.max;
      },
      undefined,
      { polling: 'raf', timeout: 30_000 },
    );
    assert.match((await page.locator('#active .state').first().textContent()) ?? '', /^step \d+\/60$/);
    // done: the image in the gallery, its settings shown
    await imagesLoaded(page, '#gallery .card.done img.result', 60_000);
    const card = page.locator('#gallery .card.done').first();
    assert.equal(await card.locator('img.result').evaluate((i) => (i as HTMLImageElement).naturalWidth), 16);
    assert.match(
      (await card.locator('.settings').textContent()) ?? '',
      /^seed 11 · 60 steps · guidance 6 · ddim · [\d.]+ s$/,
    );
    assert.equal(await card.locator('.prompt-view img.ref').count(), 2);

    // the server stored what the page sent: the two references, in place, with the dropped pixels
    const id = await card.getAttribute('data-id');
    const job = (await call(`${s.url}/api/generations/${id}`)).body;
    assert.deepEqual(
      job.prompt.map((p: any) => p.text ?? p.image.split('/').pop()),
      ['a ', 'prompt-1.png', 'dog and a ', 'prompt-2.png', 'rocket on the night sky'],
    );
    const pixels = async (b: Buffer) => (await sharp(b).raw().toBuffer()).toString('base64');
    const ref = async (k: number) => Buffer.from(await (await fetch(`${s.url}${job.prompt[k].image}`)).arrayBuffer());
    assert.equal(await pixels(await ref(1)), await pixels(await sharp(join(dir, 'red.png')).toBuffer()));
    assert.equal(await pixels(await ref(3)), await pixels(await sharp(join(dir, 'blue.png')).toBuffer()));
    writeFileSync(join(dir, 'result.png'), Buffer.from(await (await fetch(`${s.url}${job.images[0]}`)).arrayBuffer()));
  },
);

test('cancel a running job from the page', { skip: skip ?? false }, async () => {
  await page.fill('#settings [name=steps]', '1000');
  const posted = page.waitForResponse((r) => r.url().endsWith('/api/generations') && r.request().method() === 'POST');
  await page.click('#generate');
  const id = (await (await posted).json()).id as string;
  const row = page.locator(`#active li[data-id="${id}"]`);
  await page.waitForFunction(
    (jid) => (document.querySelector<HTMLProgressElement>(`#active li[data-id="${jid}"] progress`)?.value ?? 0) > 0,
    id,
    { polling: 'raf', timeout: 30_000 },
  );
  await row.locator('button.cancel').click();
  await page.waitForSelector(`#active li[data-id="${id}"][data-state=cancelled]`, { timeout: 30_000 });
  assert.equal(await row.locator('.state').textContent(), 'cancelled');
  const job = (await call(`${s.url}/api/generations/${id}`)).body;
  assert.equal(job.state, 'cancelled');
  assert.ok((await page.locator(`#gallery .card.cancelled[data-id="${id}"]`).count()) === 1);
});

test(
  'dropping a mumu PNG on the page loads its prompt, references and settings back; no page errors',
  { skip: skip ?? false },
  async () => {
    await page.evaluate(() => {
      document.querySelector('#prompt')!.replaceChildren();
      (document.querySelector('#settings [name=seed]') as HTMLInputElement).value = '';
    });
    const at = await page.locator('h2').boundingBox();
    await dropFiles(page, [join(dir, 'result.png')], at!.x + 5, at!.y + 5);
    await page.waitForFunction(
      () => document.querySelector('#message')?.textContent === 'Prompt, references and settings loaded.',
    );
    await imagesLoaded(page, '#prompt .chip img');
    assert.deepEqual(await editorParts(page, '#prompt'), [
      'a ',
      '[img]',
      'dog and a ',
      '[img]',
      'rocket on the night sky',
    ]);
    assert.deepEqual(
      await page
        .locator('#prompt .chip img')
        .evaluateAll((imgs) => imgs.map((i) => (i as HTMLImageElement).naturalWidth)),
      [40, 24],
    );
    assert.equal(await page.inputValue('#settings [name=seed]'), '11');
    assert.equal(await page.inputValue('#settings [name=steps]'), '60');
    // a thumbnail moves by dragging it to another word, and goes with its x button; the prompt still reads in order
    const to = await pointBefore(page, '#prompt', 'night');
    await page.locator('#prompt .chip').first().hover();
    await page.mouse.down();
    await page.mouse.move(to.x, to.y, { steps: 8 });
    await page.mouse.up();
    assert.deepEqual(await editorParts(page, '#prompt'), [
      'a dog and a ',
      '[img]',
      'rocket on the ',
      '[img]',
      'night sky',
    ]);
    assert.deepEqual(
      await page
        .locator('#prompt .chip img')
        .evaluateAll((imgs) => imgs.map((i) => (i as HTMLImageElement).naturalWidth)),
      [24, 40],
    );
    await page.locator('#prompt .chip').first().hover();
    await page.locator('#prompt .chip .remove').first().click();
    assert.deepEqual(await editorParts(page, '#prompt'), ['a dog and a rocket on the ', '[img]', 'night sky']);
    // an image pasted from the clipboard lands at the caret of the negative prompt
    await page.click('#negative');
    await page.keyboard.type('blurry ');
    await page.evaluate(
      async (b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        await navigator.clipboard.write([new ClipboardItem({ 'image/png': new Blob([bytes], { type: 'image/png' }) })]);
      },
      readFileSync(join(dir, 'red.png')).toString('base64'),
    );
    await page.keyboard.press('Control+V');
    await page.keyboard.type(' noise');
    await page.waitForFunction(() => document.querySelectorAll('#negative .chip').length === 1);
    assert.deepEqual(await editorParts(page, '#negative'), ['blurry ', '[img]', ' noise']);
    if (process.env.MUMU_SCREENSHOT) await page.screenshot({ path: process.env.MUMU_SCREENSHOT, fullPage: true });
    assert.deepEqual(pageErrors, []);
  },
);

test('with --token the page asks for it once and keeps it in an HttpOnly cookie', { skip: skip ?? false }, async () => {
  const token = 'page sign-in token';
  const locked = await serve(['--model', await makeTinyModel(), '--out', join(dir, 'out-token')], {
    env: { MUMU_TOKEN: token },
  });
  try {
    const p = await browser.context.newPage();
    await p.goto(locked.url);
    await p.waitForSelector('#login[open]');
    await p.fill('#login input[name=token]', 'not it');
    await p.click('#login button[type=submit]');
    await p.waitForFunction(() => document.querySelector('.login-error')?.textContent !== '');
    assert.equal(await p.locator('.login-error').textContent(), "That token is not this server's.");
    await p.fill('#login input[name=token]', token);
    await p.click('#login button[type=submit]');
    await p.waitForSelector('body[data-ready=true]');
    assert.match(
      (await p.locator('#model').textContent()) ?? '',
      /^mumu-tiny-\S+ · up to 3 images per prompt · 16×16 px$/,
    );
    assert.equal(await p.evaluate(() => document.cookie), '', 'the token cookie is HttpOnly');
    const cookies = await browser.context.cookies(locked.url);
    assert.deepEqual(
      cookies.map((c) => [c.name, c.httpOnly, c.sameSite]),
      [['mumu_token', true, 'Strict']],
    );
    // a reload needs no second sign-in
    await p.reload();
    await p.waitForSelector('body[data-ready=true]');
    assert.equal(await p.locator('#login[open]').count(), 0);
    await p.close();
  } finally {
    await locked.stop();
  }
});
