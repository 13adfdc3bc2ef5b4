// Makes docs/serve.png, the README's picture of `mumu serve`: the shipped model behind the server, the page in
// Debian's chromium (as the browser test drives it), the README's two references dropped into the prompt, one
// finished job of four images and a second one in progress.
//   node --import tsx scripts/screenshot-serve.ts [--out docs/serve.png] [--model DIR]
import { parseArgs } from 'node:util';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '../test/serve/helpers.ts';
import { launchChromium, dropFiles, pointBefore, chromiumSkipReason } from '../test/serve/browser.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { values: v } = parseArgs({ options: { out: { type: 'string' }, model: { type: 'string' } } });
const skip = chromiumSkipReason();
if (skip) throw new Error(skip);

const server = await serve(
  ['--model', v.model ?? join(ROOT, 'models', 'emoji-default'), '--out', mkdtempSync(join(tmpdir(), 'mumu-shot-'))],
  { env: { MUMU_NUM_THREADS: '2' } },
);
const browser = await launchChromium();
try {
  const page = await browser.context.newPage();
  await page.setViewportSize({ width: 1000, height: 860 });
  await page.goto(server.url);
  await page.waitForSelector('body[data-ready=true]');
  await page.click('#prompt');
  await page.keyboard.type('a dog face and a rocket on a blue background, openmoji style');
  for (const [word, file] of [
    ['dog', 'dog-face.png'],
    ['rocket', 'rocket.png'],
  ] as const) {
    const at = await pointBefore(page, '#prompt', word);
    await dropFiles(page, [join(ROOT, 'examples', file)], at.x, at.y);
  }
  await page.fill('#settings [name=steps]', '50');
  await page.fill('#settings [name=seed]', '1');
  await page.fill('#settings [name=n]', '4');
  await page.click('#generate');
  await page.waitForSelector('#gallery .card.done img.result', { timeout: 300_000 });
  await page.fill('#settings [name=n]', '1');
  await page.fill('#settings [name=seed]', '7');
  await page.click('#generate');
  await page.waitForFunction(
    () => {
      const bar = document.querySelector<HTMLProgressElement>('#active progress');
      return bar !== null && bar.value >= 18;
    },
    undefined,
    { polling: 100, timeout: 120_000 },
  );
  await page.mouse.move(0, 0);
  const out = v.out ?? join(ROOT, 'docs', 'serve.png');
  await page.screenshot({ path: out });
  process.stderr.write(`wrote ${out}\n`);
  await page.locator('#active button.cancel').click();
} finally {
  await browser.close();
  await server.stop();
}
