// A toy MumuComponents built from plain tensor ops: deterministic, instant, and sensitive to every input (token
// ids, images, masks, batch rows kept apart), so pipeline mechanics can be tested without the model family.
import { randn, Generator, F, type Tensor } from '../../src/torch/index.ts';
import { PromptTokenizer, buildWordLevelTokenizer } from '../../src/prompt/index.ts';
import { SD_SCHEDULER_CONFIG, scheduleFromConfig } from '../../src/diffusion/index.ts';
import type { MumuComponents } from '../../src/pipeline.ts';

export function toyComponents() {
  const tokenizer = new PromptTokenizer(
    buildWordLevelTokenizer(['a', 'dog', 'cat', 'and', 'rocket', 'blurry']) as object,
  );
  const g = new Generator(0);
  const emb = randn([tokenizer.vocabSize, 6], { generator: g });
  const calls = { encode: [] as number[], unet: [] as number[] };
  const c: MumuComponents = {
    prompt: { tokenizer, imageSize: 8, tokensPerImage: 4, maxImages: 2 },
    encode(batch) {
      calls.encode.push(batch.inputIds.size(0));
      let ctx = F.embedding(emb, batch.inputIds); // (B, T, 6)
      if (batch.pixelValues) ctx = ctx.add(batch.pixelValues.mean().item());
      return { context: ctx, mask: batch.attentionMask };
    },
    unet(x: Tensor, t: number, cond) {
      calls.unet.push(x.size(0));
      const m = cond.context
        .mul(cond.mask!.unsqueeze(-1))
        .sum([1, 2])
        .div(cond.mask!.sum(1).mul(6))
        .reshape(x.size(0), 1, 1, 1);
      return x
        .mul(0.5 + t / 4000)
        .add(m.mul(0.05))
        .add(x.sin().mul(0.1));
    },
    decode: (lat) =>
      F.interpolate(lat.narrow(1, 0, 3), { size: [16, 16], mode: 'nearest' })
        .mul(0.5)
        .tanh(),
    latentShape: [4, 4, 4],
    scheduler: SD_SCHEDULER_CONFIG,
    schedule: scheduleFromConfig(SD_SCHEDULER_CONFIG),
    device: 'cpu',
    name: 'toy',
  };
  return { components: c, calls };
}
