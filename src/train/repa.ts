// REPA, representation alignment (Yu et al. 2024, arXiv 2410.06940; for UNets, U-REPA, arXiv 2503.18414): a
// training-only loss that pulls the denoiser's hidden states on the *noisy* latent toward a frozen encoder's patch
// features of the *clean* image, through a small MLP projector. REPA reports a SiT reaching the same FID 17.5x sooner:
// the diffusion model no longer has to discover from the denoising loss alone what the image shows. U-REPA finds the
// UNet's mid block the place to align, its features (at a coarser grid than the encoder's) upsampled after the
// projector.
//
// The encoder here is mumu's own: the ViT of the vlm stage (the vision tower of MUMU's VLM, frozen in the MUMU stages,
// trained with the VLM to caption EmojiWorld scenes and crops; its captions name the concept and style of a crop
// 99.5% / 96.5% of the time, docs/TRAINING.md). No model hub is reachable, so no DINOv2: the alignment target is a
// representation that already tells EmojiWorld's concepts and styles apart, which the UNet after 100k+ samples
// still cannot draw. Switched on by `loss.repa_weight` (REPA's lambda, 0.5 in the paper), the tap by
// `loss.repa_layer`; the projector lives on the model as `repa_projector` (trained and checkpointed, never exported).
import { Tensor, F, noGrad } from '../torch/index.ts';
import { Module, Linear } from '../nn/index.ts';
import type { VisionTransformer } from '../models/vit.ts';

// REPA's projector: a 3-layer MLP with SiLU, applied at every position of a (B, C, h, w) feature map ->
// (B, outDim, h, w).
export class RepaProjector extends Module {
  fc1: Linear;
  fc2: Linear;
  fc3: Linear;
  constructor(inDim: number, hidden: number, outDim: number) {
    super();
    this.fc1 = new Linear(inDim, hidden);
    this.fc2 = new Linear(hidden, hidden);
    this.fc3 = new Linear(hidden, outDim);
  }
  forward(h: Tensor): Tensor {
    const x = h.permute(0, 2, 3, 1); // (B, h, w, C)
    const y = this.fc3.forward(this.fc2.forward(this.fc1.forward(x).silu()).silu());
    return y.permute(0, 3, 1, 2); // (B, outDim, h, w)
  }
}

// The frozen encoder's patch tokens of the clean images (B, 3, S, S) in [-1, 1] (the VLM processor's range): the
// images brought to the ViT's native side (exact average pooling when S is a multiple of it, as a 2x downscale of a
// render; bilinear otherwise) -> (B, (side / patch)^2, hidden). No gradient.
export function encoderFeatures(vit: VisionTransformer, images: Tensor): Tensor {
  return noGrad(() => {
    const side = vit.config.image_size;
    const S = images.size(-1);
    const x =
      S === side
        ? images
        : S % side === 0
          ? F.avgPool2d(images, S / side)
          : F.interpolate(images, { size: [side, side], mode: 'bilinear' });
    return vit.forward(x);
  });
}

// 1 - the mean cosine similarity between the projected UNet features (B, D, h, w) and the encoder's tokens
// (B, g*g, D), over every token of every item (REPA's -sim, shifted to be >= 0: the same gradient). A UNet grid other
// than the encoder's g x g is resized to it bilinearly (U-REPA upsamples after the projector).
export function repaLoss(projected: Tensor, target: Tensor): Tensor {
  const [B, D] = [projected.size(0), projected.size(1)];
  const n = target.size(1);
  const g = Math.round(Math.sqrt(n));
  if (g * g !== n) throw new Error(`repaLoss: the encoder's ${n} tokens are not a square grid`);
  if (target.size(2) !== D) throw new Error(`repaLoss: projected width ${D} != encoder width ${target.size(2)}`);
  let z = projected;
  if (z.size(2) !== g || z.size(3) !== g) z = F.interpolate(z, { size: [g, g], mode: 'bilinear' });
  z = z.reshape(B, D, n).transpose(1, 2); // (B, n, D)
  const cos = z
    .mul(target)
    .sum(-1)
    .div(z.norm(2, -1).mul(target.norm(2, -1)).clamp(1e-8));
  return cos.mean().neg().add(1);
}
