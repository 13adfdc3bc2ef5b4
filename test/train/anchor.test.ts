// The MUMU stage's text anchor (src/train/anchor.ts): the prompt's word tokens and their places, the masked MSE on a
// hand-computed case, the same value as adapter-align's loss on a text-only prompt, and a stage with
// loss.text_anchor_weight: the loss is the diffusion loss plus the weighted anchor, whose gradient reaches the
// adapter and never the UNet.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, noGrad } from '../../src/torch/index.ts';
import { maskedMse, textAnchorLoss, wordTokens } from '../../src/train/anchor.ts';
import { StageData } from '../../src/train/data.ts';
import { buildModel, applyPlan, StageRunner } from '../../src/train/stages.ts';
import type { EncodedPrompt } from '../../src/prompt/index.ts';
import { tinyConfig } from './helpers.ts';

const near = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) < tol, `${a} vs ${b}`);
const prompt = (inputIds: number[]) => ({ inputIds, imageSpans: [], images: [] }) as unknown as EncodedPrompt;

test('wordTokens: the tokens other than image tokens, in order, with their places; right-padded', () => {
  const w = wordTokens([prompt([1, 5, 9, 9, 9, 6, 7]), prompt([1, 9, 9, 4])], 9);
  assert.deepEqual(w.ids.shape, [2, 4]);
  assert.deepEqual([...w.ids.toArray()].map(Number), [1, 5, 6, 7, 1, 4, 0, 0]);
  assert.deepEqual([...w.positions.toArray()].map(Number), [0, 1, 5, 6, 0, 3, 0, 0]);
  assert.deepEqual([...w.mask.toArray()], [1, 1, 1, 1, 1, 1, 0, 0]);
});

test('textAnchorLoss: the context at the word places against the text states, padding ignored (hand-computed)', () => {
  // context (1, 4, 2); words at places 0 and 3 (places 1-2 an image run)
  const context = tensor([0, 0, 50, 50, 60, 60, 1, 2]).reshape(1, 4, 2);
  const words = wordTokens([prompt([1, 9, 9, 7])], 9);
  const states = tensor([1, 0, 1, 4]).reshape(1, 2, 2);
  // ((0-1)^2 + 0^2 + 0^2 + (2-4)^2) / (2 tokens * 2 wide) = 5 / 4
  near(textAnchorLoss(context, words, states).item(), 1.25);
  // a padded row adds nothing
  near(
    maskedMse(
      tensor([1, 1, 9, 9]).reshape(1, 2, 2),
      tensor([0, 0, 0, 0]).reshape(1, 2, 2),
      tensor([1, 0]).reshape(1, 2),
    ).item(),
    1,
  );
});

test("on a text-only prompt the anchor is exactly adapter-align's loss", async () => {
  const cfg = tinyConfig('adapter-align');
  const built = await buildModel(cfg);
  applyPlan(built.model, cfg);
  const runner = new StageRunner(cfg, built);
  const data = await StageData.open(cfg, runner.prompt);
  const items = await data.batchItems(0);
  const b = runner.batch(items);
  const m = built.model;
  const align = noGrad(() => runner.loss(b).loss.item());
  const words = wordTokens(
    items.map((it) => it.prompt!),
    runner.prompt.tokenizer.imageTokenId!,
  );
  const anchor = noGrad(() =>
    textAnchorLoss(
      m.encodePrompt({ inputIds: b.ids!, pixelValues: null, attentionMask: b.mask }),
      words,
      m.encodeText(words.ids, words.mask),
    ).item(),
  );
  assert.ok(align > 0);
  near(anchor, align, 1e-6 * align);
});

test('a MUMU stage with loss.text_anchor_weight: diffusion loss plus the weighted anchor; its gradient stops at the adapter', async () => {
  const cfg = tinyConfig('mumu-stage1', { loss: { text_anchor_weight: 0.5 } });
  const built = await buildModel(cfg);
  applyPlan(built.model, cfg);
  const m = built.model;
  const runner = new StageRunner(cfg, built);
  const data = await StageData.open(cfg, runner.prompt);
  const b = runner.batch(await data.batchItems(0));
  assert.ok(b.words, 'the batch carries the word tokens');
  const imageId = runner.prompt.tokenizer.imageTokenId!;
  assert.ok([...b.ids!.toArray()].map(Number).includes(imageId), 'the tiny batch has an image in its prompts');
  const { loss, parts } = runner.loss(b);
  near(loss.item(), parts.diffusion!.item() + 0.5 * parts.anchor!.item(), 1e-6);
  assert.ok(parts.anchor!.item() > 0);
  // the same draws with the anchor off give the same diffusion loss
  const off = new StageRunner({ ...cfg, loss: { ...cfg.loss, text_anchor_weight: null } }, built);
  near(
    noGrad(() => off.loss(b).loss.item()),
    parts.diffusion!.item(),
  );
  parts.anchor!.backward();
  const gradAbs = (re: RegExp) =>
    m
      .namedParameters()
      .filter(([n, p]) => re.test(n) && p.requiresGrad)
      .reduce((s, [, p]) => s + (p.grad ? p.grad.abs().sum().item() : 0), 0);
  assert.ok(gradAbs(/^adapter\./) > 0, 'the anchor trains the adapter');
  assert.equal(gradAbs(/^unet\./), 0, 'and never the UNet');
  // only a MUMU stage of a model with a text encoder can have it
  assert.throws(
    () => applyPlan(m, tinyConfig('t2i-base', { loss: { text_anchor_weight: 0.5 } })),
    /stage t2i-base is not a MUMU stage/,
  );
});
