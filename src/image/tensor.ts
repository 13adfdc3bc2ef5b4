// Images out of the tensor engine: what the VAE decodes, in [-1, 1], to 8-bit RGB. Kept apart from index.ts so
// that the pixel code (and the data pipeline's worker threads) never load libtorch.
import { noGrad, tidy, type Tensor } from '../torch/index.ts';
import type { RgbImage } from './image.ts';

// (B, 3, H, W) in [-1, 1] -> B RGB images: (x + 1) * 127.5, rounded, clamped to 0..255.
export function imagesFromTensor(x: Tensor): RgbImage[] {
  const [B, , H, W] = x.shape as [number, number, number, number];
  const bytes = noGrad(() =>
    tidy(() => x.clamp(-1, 1).add(1).mul(127.5).round().to('uint8').permute(0, 2, 3, 1).contiguous().cpu().toBytes()),
  );
  const n = H * W * 3;
  return Array.from({ length: B }, (_, i) => ({
    width: W,
    height: H,
    channels: 3,
    data: bytes.slice(i * n, (i + 1) * n),
  }));
}
