// Loads the libtorch N-API addon built by `npm run setup` (native/). Everything in src/torch goes through `N`.
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('../../', import.meta.url));
const addonPath = join(root, 'native/build/Release/mumu_torch.node');

export type NativeTensor = { readonly __native: unique symbol };
export type NativeGenerator = { readonly __generator: unique symbol };

function load(): any {
  // libgomp's waiting threads spin ~300k times between parallel regions by default. On shared cores (other
  // processes, parallel test files) every op then waits out those spins: conv2d fwd+bwd took 108 ms instead of
  // 16 ms with two busy neighbours, and a UNet call 750 ms instead of 50 ms. Sleeping at once (PASSIVE) costs on a
  // quiet machine instead (conv 11.6 ms vs 4.5 ms). A short spin keeps both: 4.6 ms quiet, 18 ms with neighbours
  // (bench/peers/torch_peer.py, 2026-11-26). Set before libgomp loads; OMP_WAIT_POLICY or GOMP_SPINCOUNT override.
  if (process.env.OMP_WAIT_POLICY === undefined) process.env.GOMP_SPINCOUNT ??= '10000';
  if (!existsSync(addonPath)) {
    throw new Error(`mumu's libtorch binding is not built (${addonPath} is missing): run \`npm run setup\``);
  }
  const addon = createRequire(import.meta.url)(addonPath);
  // libtorch picks the number of *physical* cores; a 2-vCPU machine then computes on one. Use every core by default.
  addon.setNumThreads(Number(process.env.MUMU_NUM_THREADS ?? availableParallelism()));
  return addon;
}

// The binding's functions are positional and untyped; src/torch/*.ts give them types.
export const N: any = load();
