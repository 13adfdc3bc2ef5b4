// Attention: the head-splitting and masking helpers every attention in mumu shares, and diffusers' `Attention`
// (to_q / to_k / to_v / to_out.0) used by the UNet and the adapter. The transformers-named attentions (SigLIP's
// out_proj, Mistral's o_proj with rotary and grouped KV heads, Idefics2's perceiver) are written in their model files
// from these helpers, each in a few lines.
import { Tensor, F, ones } from '../torch/index.ts';
import { Module } from './module.ts';
import { Linear, Dropout } from './layers.ts';

// (B, T, heads * d) -> (B, heads, T, d)
export function splitHeads(x: Tensor, heads: number): Tensor {
  const [B, T] = x.shape as [number, number];
  return x.view(B, T, heads, -1).transpose(1, 2);
}

// (B, heads, T, d) -> (B, T, heads * d)
export function mergeHeads(x: Tensor): Tensor {
  const [B, H, T, d] = x.shape as [number, number, number, number];
  return x.transpose(1, 2).reshape(B, T, H * d);
}

// Grouped-query attention (Mistral, Idefics2's perceiver): each of the kvHeads key/value heads serves
// heads / kvHeads query heads. (B, kvHeads, T, d) -> (B, kvHeads * nRep, T, d), as repeat_interleave on dim 1.
export function repeatKV(x: Tensor, nRep: number): Tensor {
  if (nRep === 1) return x;
  const [B, H, T, d] = x.shape as [number, number, number, number];
  return x
    .unsqueeze(2)
    .expand(B, H, nRep, T, d)
    .reshape(B, H * nRep, T, d);
}

export interface MaskOptions {
  // (B, Tk), 1 / true where the key is a real token: the `attention_mask` of transformers.
  keyMask?: Tensor | null;
  causal?: boolean;
}

// The boolean mask (true = may attend) for scaled dot-product attention, broadcastable to (B, heads, Tq, Tk), or
// null with isCausal when the causal triangle alone is needed (the fused kernel builds it itself).
export function attentionMask(
  Tq: number,
  Tk: number,
  { keyMask, causal = false }: MaskOptions,
): { mask: Tensor | null; isCausal: boolean } {
  if (!keyMask) return { mask: null, isCausal: causal };
  const B = keyMask.size(0);
  let mask = keyMask.to('bool').view(B, 1, 1, Tk); // (B, 1, 1, Tk)
  if (causal) mask = mask.logicalAnd(ones([Tq, Tk], { dtype: 'bool', device: keyMask.device }).tril(Tk - Tq)); // (B, 1, Tq, Tk)
  // A query that may attend to nothing (a left-padding position under the causal triangle) would get softmax of all
  // -inf = NaN, and NaN leaks into gradients even where the loss ignores it. Let such rows see every key: their
  // outputs are padding and never read.
  return { mask: mask.logicalOr(mask.sum(-1, true).eq(0)), isCausal: false };
}

// softmax(q k^T / sqrt(d)) v on (B, heads, T, d), with the masks above.
export function attend(q: Tensor, k: Tensor, v: Tensor, opts: MaskOptions = {}): Tensor {
  const { mask, isCausal } = attentionMask(q.size(2), k.size(2), opts);
  return F.scaledDotProductAttention(q, k, v, { mask, isCausal });
}

export interface AttentionOptions {
  heads: number;
  dimHead: number;
  crossAttentionDim?: number; // keys and values come from a context of this width (attn2); default: self-attention
  bias?: boolean; // on to_q / to_k / to_v (false in the UNet, true in the VAE)
  outBias?: boolean;
  dropout?: number;
}

// diffusers' Attention: self-attention (attn1) or cross-attention to a context such as text or VLM states (attn2).
export class Attention extends Module {
  to_q: Linear;
  to_k: Linear;
  to_v: Linear;
  to_out: [Linear, Dropout];
  readonly heads: number;
  constructor(
    queryDim: number,
    { heads, dimHead, crossAttentionDim = queryDim, bias = false, outBias = true, dropout = 0 }: AttentionOptions,
  ) {
    super();
    const inner = heads * dimHead;
    this.heads = heads;
    this.to_q = new Linear(queryDim, inner, { bias });
    this.to_k = new Linear(crossAttentionDim, inner, { bias });
    this.to_v = new Linear(crossAttentionDim, inner, { bias });
    this.to_out = [new Linear(inner, queryDim, { bias: outBias }), new Dropout(dropout)];
  }

  // x (B, T, queryDim); context (B, S, crossAttentionDim) or none for self-attention; keyMask (B, S).
  forward(x: Tensor, context: Tensor | null = null, opts: MaskOptions = {}): Tensor {
    const ctx = context ?? x;
    const q = splitHeads(this.to_q.forward(x), this.heads); // (B, heads, T, d)
    const k = splitHeads(this.to_k.forward(ctx), this.heads); // (B, heads, S, d)
    const v = splitHeads(this.to_v.forward(ctx), this.heads);
    const out = mergeHeads(attend(q, k, v, opts)); // (B, T, heads * d)
    return this.to_out[1].forward(this.to_out[0].forward(out));
  }
}
