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
  // libgomp busy-waits between parallel regions by default; when the cores are shared (other processes, parallel
  // test files) every op then waits out other threads' spins: GELU measured 16-26 ms instead of 1 ms. Sleeping
  // waiters cost little on a quiet machine (bench/engine.ts measures both). Must be set before libgomp loads.
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
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
