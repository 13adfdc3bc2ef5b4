// The data-parallel split, one rule for every data source (items generated on the fly, a shard run read whole by the
// trainer, shards streamed by src/data/shards/reader.ts): rank r of N takes the positions j of the single-process
// stream with j mod N = r, as torch's DistributedSampler does (indices[rank::N]). The rule does not depend on the
// batch size, and the ranks' positions, interleaved, are the single-process stream again.

export function ownsPosition(position: number, rank: number, worldSize: number): boolean {
  return position % worldSize === rank;
}

// Rank r's positions in [start, start + count): start + r, start + r + N, ... (count and start multiples of N give
// every rank count / N of them).
export function rankPositions(start: number, count: number, rank: number, worldSize: number): number[] {
  if (!Number.isInteger(worldSize) || worldSize < 1 || !Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new Error(`rank ${rank} outside world size ${worldSize}`);
  const out: number[] = [];
  const first = start + ((((rank - start) % worldSize) + worldSize) % worldSize);
  for (let j = first; j < start + count; j += worldSize) out.push(j);
  return out;
}
