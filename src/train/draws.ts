// The random draws of a training loss, item by item: item j of the data stream (its global position) gets its own
// Generator seeded by (run seed, j), and its VAE posterior sample, noise and timestep are the next numbers of that
// generator, in that order. So an item's draws do not depend on the batch it lands in: splitting a batch across
// ranks or micro-batches, or resuming with another world size, leaves every number as it was, and a checkpoint needs
// no RNG state. The generators are CPU ones (as every mumu Generator); the stacked draws move to the run's device.
import { Generator, randn, randint, cat, type Tensor } from '../torch/index.ts';
import { deriveSeed } from '../data/rng.ts';

export const itemDrawSeed = (seed: number, index: number): number => deriveSeed(seed, index, 'loss-draws');

export class ItemDraws {
  readonly #gens: Generator[];

  constructor(
    seed: number,
    indices: readonly number[],
    readonly device = 'cpu',
  ) {
    this.#gens = indices.map((j) => new Generator(itemDrawSeed(seed, j)));
  }

  // (B, ...shape) standard normal: row b from item b's generator.
  randn(shape: readonly number[]): Tensor {
    return this.#rows((g) => randn([1, ...shape], { generator: g }));
  }

  // (B,) int64 uniform in [low, high): row b from item b's generator.
  randint(low: number, high: number): Tensor {
    return this.#rows((g) => randint(low, high, [1], { generator: g }));
  }

  #rows(draw: (g: Generator) => Tensor): Tensor {
    const rows = cat(this.#gens.map(draw), 0);
    return this.device === 'cpu' ? rows : rows.to(this.device);
  }
}
