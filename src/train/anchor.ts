// The text anchor of the MUMU stage (loss.text_anchor_weight): beside the diffusion loss, the adapter's output at
// the prompt's word tokens is pulled towards the text-only base's text encoder states for the same words (the
// prompt with its image runs taken out). The adapter's warm start (adapter-align, Kosmos-G's AlignerNet in its MSE
// form, arXiv 2310.02992 section 3.2) makes VLM -> adapter read a caption as the base's text encoder does; measured
// here (docs/TRAINING.md, "The MUMU stage's UNet"), the diffusion loss alone then pulls the words away from that
// within 10k samples, even with the UNet frozen: following falls from the base's level to ~15%. The anchor keeps the
// words where the base reads them and leaves the image tokens free to carry what the references add.
import { tensor, type Tensor } from '../torch/index.ts';
import type { EncodedPrompt } from '../prompt/index.ts';

// Mean squared error over the real tokens (mask 1) and the width: the loss of adapter-align and of the anchor.
export function maskedMse(pred: Tensor, target: Tensor, mask: Tensor): Tensor {
  const w = mask.unsqueeze(-1);
  return pred
    .sub(target)
    .square()
    .mul(w)
    .sum()
    .div(w.sum().mul(pred.size(-1)));
}

export interface WordTokens {
  ids: Tensor; // (B, W) int64: each prompt's tokens other than image tokens, in order, right-padded
  mask: Tensor; // (B, W) float, 1 = a word token
  positions: Tensor; // (B, W) int64: where each sits in the multimodal prompt (0 at padding)
}

// The word tokens of each multimodal prompt: what the text-only base would read for the same words.
export function wordTokens(prompts: readonly EncodedPrompt[], imageTokenId: number): WordTokens {
  const words = prompts.map((p) => {
    const ids: number[] = [],
      at: number[] = [];
    p.inputIds.forEach((id, i) => {
      if (id !== imageTokenId) {
        ids.push(id);
        at.push(i);
      }
    });
    return { ids, at };
  });
  const B = prompts.length,
    W = Math.max(1, ...words.map((w) => w.ids.length));
  const ids = new BigInt64Array(B * W),
    mask = new Float32Array(B * W),
    positions = new BigInt64Array(B * W);
  words.forEach((w, b) =>
    w.ids.forEach((id, i) => {
      ids[b * W + i] = BigInt(id);
      mask[b * W + i] = 1;
      positions[b * W + i] = BigInt(w.at[i]!);
    }),
  );
  return {
    ids: tensor(ids, { shape: [B, W] }),
    mask: tensor(mask, { shape: [B, W] }),
    positions: tensor(positions, { shape: [B, W] }),
  };
}

// The anchor: the context (B, T, D) at the word positions against the text encoder's states (B, W, D) of the words.
export function textAnchorLoss(context: Tensor, words: WordTokens, textStates: Tensor): Tensor {
  const [B, W] = words.positions.shape as [number, number];
  const atWords = context.gather(1, words.positions.unsqueeze(-1).expand(B, W, context.size(-1)));
  return maskedMse(atWords, textStates, words.mask);
}
