// @jax-js/jax peer for bench/engine.ts: the same fp32 workloads as mumuRows(), in jax-js 0.1.25 on its Wasm (CPU)
// backend. Returns median milliseconds per row (tiny_op_us in microseconds); a row is null, with a console.warn, where
// jax-js cannot run it. Progress goes to stderr.
//   node --import tsx bench/peers/jax.ts [repeats]      prints the JSON
//
// Notes on jax-js that shape this file:
// - Threads: the Wasm backend only goes multi-threaded through a pool of *Web* Workers (global `Worker` +
//   SharedArrayBuffer). Node has no global `Worker`, so in Node every kernel runs on the main thread: one core.
// - Laziness: jax-js is lazy. An op only records a pending kernel; nothing executes until `blockUntilReady()` /
//   `data()` on a result. Every timing below therefore ends in `blockUntilReady` on all outputs (which waits for the
//   kernels to finish), and scalar losses are read back with `data()`.
// - Ownership: every jax-js function consumes (decrements the refcount of) its array arguments, hence the `.ref`s.
// - Every workload runs under `jit` (the JAX idiom; the first call traces and compiles, hence a warm-up call). The
//   first conv call takes 20-30 s on this machine.
import {
  blockUntilReady,
  defaultDevice,
  init,
  jit,
  lax,
  nn,
  numpy as np,
  random,
  tree,
  valueAndGrad,
  type JsTree,
} from '@jax-js/jax';

type Arr = np.Array;

/** Stop adding timed repeats to a row once it has spent this long (warm-up excluded). */
const ROW_BUDGET_MS = 60_000;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Wait for every array in `out` to be computed, then free them. */
async function settle(out: JsTree<Arr>): Promise<void> {
  await blockUntilReady(out);
  tree.dispose(out);
}

/** Median ms of `run()` (which must return its outputs, not yet awaited) over up to `repeats` timed calls. */
async function medianMs(name: string, run: () => JsTree<Arr>, repeats: number, warmup = 1): Promise<number> {
  const w0 = performance.now();
  for (let i = 0; i < warmup; i++) await settle(run());
  const times: number[] = [];
  // Process CPU ms per call, logged only: jax-js runs on one core, so on a shared machine CPU ms well below wall ms
  // says the call spent time waiting for a core.
  const cpuTimes: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < repeats; i++) {
    const c = process.cpuUsage();
    const t = performance.now();
    await settle(run());
    times.push(performance.now() - t);
    const dc = process.cpuUsage(c);
    cpuTimes.push((dc.user + dc.system) / 1000);
    if (performance.now() - t0 > ROW_BUDGET_MS && i + 1 < repeats) {
      console.error(`[jax] ${name}: stopped after ${i + 1} of ${repeats} repeats (over ${ROW_BUDGET_MS / 1000} s)`);
      break;
    }
  }
  const ms = median(times);
  console.error(
    `[jax] ${name}: ${ms.toFixed(2)} ms (median of ${times.length}, CPU ${median(cpuTimes).toFixed(2)} ms; ` +
      `warm-up ${(t0 - w0).toFixed(0)} ms)`,
  );
  return ms;
}

let seed = 0;
const randn = (shape: number[], scale = 1): Arr => {
  const x = random.normal(random.key(seed++), shape);
  return scale === 1 ? x : x.mul(scale);
};

async function matmulRow(n: number, repeats: number): Promise<number> {
  const a = randn([n, n]),
    b = randn([n, n]);
  const mm = jit((x: Arr, y: Arr) => np.matmul(x, y));
  try {
    return await medianMs(`matmul_${n}`, () => mm(a.ref, b.ref), repeats);
  } finally {
    mm.dispose();
    tree.dispose([a, b]);
  }
}

// loss = sum(conv2d(x, w)), NCHW / OIHW, stride 1, padding 1; value and gradients wrt x and w.
async function convRow(repeats: number): Promise<number> {
  const x = randn([8, 64, 32, 32]),
    w = randn([64, 64, 3, 3], 0.05);
  const loss = (x: Arr, w: Arr) =>
    np.sum(
      lax.conv(
        x,
        w,
        [1, 1],
        [
          [1, 1],
          [1, 1],
        ],
      ),
    );
  const step = jit(valueAndGrad(loss, { argnums: [0, 1] }));
  try {
    return await medianMs('conv_fwd_bwd', () => step(x.ref, w.ref), repeats);
  } finally {
    step.dispose();
    tree.dispose([x, w]);
  }
}

// loss = sum(softmax(q k^T / 8) v) over q, k, v of shape (8, 256, 64); value and gradients wrt q, k, v.
async function attentionRow(repeats: number): Promise<number> {
  const q = randn([8, 256, 64]),
    k = randn([8, 256, 64]),
    v = randn([8, 256, 64]);
  const loss = (q: Arr, k: Arr, v: Arr) =>
    np.sum(np.matmul(nn.softmax(np.matmul(q, np.swapaxes(k, -1, -2)).div(8), -1), v));
  const step = jit(valueAndGrad(loss, { argnums: [0, 1, 2] }));
  try {
    return await medianMs('attention_fwd_bwd', () => step(q.ref, k.ref, v.ref), repeats);
  } finally {
    step.dispose();
    tree.dispose([q, k, v]);
  }
}

// One training step of 512 -> 512 -> 512 -> 10 with gelu, batch 64, softmax cross-entropy, AdamW (lr 1e-3, weight
// decay 0.01) as in mumuRows(): forward, backward and the update in one jitted function.
type Params = { w1: Arr; b1: Arr; w2: Arr; b2: Arr; w3: Arr; b3: Arr };
async function mlpRow(repeats: number): Promise<number> {
  let p: Params = {
    w1: randn([512, 512], 0.04),
    b1: np.zeros([512]),
    w2: randn([512, 512], 0.04),
    b2: np.zeros([512]),
    w3: randn([512, 10], 0.04),
    b3: np.zeros([10]),
  };
  const zeros = (q: Params) => tree.map((a: Arr) => np.zerosLike(a), tree.ref(q)) as Params;
  let m = zeros(p),
    s = zeros(p);
  const x = randn([64, 512]);
  const y = nn.oneHot(random.randint(random.key(seed++), { minval: 0, maxval: 10, shape: [64] }), 10);
  const lossFn = (p: Params, x: Arr, y: Arr) => {
    const h1 = nn.gelu(np.matmul(x, p.w1).add(p.b1));
    const h2 = nn.gelu(np.matmul(h1, p.w2).add(p.b2));
    const logits = np.matmul(h2, p.w3).add(p.b3);
    return np.mean(np.sum(nn.logSoftmax(logits, -1).mul(y), -1)).neg();
  };
  const [lr, b1, b2, eps, wd] = [1e-3, 0.9, 0.999, 1e-8, 0.01];
  // c1 = lr / (1 - b1^t), c2 = 1 / (1 - b2^t): the bias corrections, passed in so the step compiles once.
  const step = jit((p: Params, m: Params, s: Params, x: Arr, y: Arr, c1: Arr, c2: Arr) => {
    const [loss, g] = valueAndGrad(lossFn)(tree.ref(p), x, y);
    const m2 = tree.map((mi: Arr, gi: Arr) => mi.mul(b1).add(gi.mul(1 - b1)), m, tree.ref(g)) as Params;
    const s2 = tree.map((si: Arr, gi: Arr) => si.mul(b2).add(np.square(gi).mul(1 - b2)), s, g) as Params;
    const p2 = tree.map(
      (pi: Arr, mi: Arr, si: Arr) => pi.mul(1 - lr * wd).sub(mi.mul(c1.ref).div(np.sqrt(si.mul(c2.ref)).add(eps))),
      p,
      tree.ref(m2),
      tree.ref(s2),
    ) as Params;
    c1.dispose();
    c2.dispose();
    return { p: p2, m: m2, s: s2, loss };
  });
  let t = 0;
  const run = () => {
    t++;
    const c1 = np.array(lr / (1 - b1 ** t)),
      c2 = np.array(1 / (1 - b2 ** t));
    const out = step(p, m, s, x.ref, y.ref, c1, c2);
    ({ p, m, s } = out); // the new state: settle() waits on it too, but frees only the loss and these extra refs
    return [out.loss, tree.ref([p, m, s])] as [Arr, Params[]];
  };
  try {
    const ms = await medianMs('mlp_step', run, repeats);
    const [last, extra] = run();
    await settle(extra);
    const loss = (await last.data())[0]!;
    if (!Number.isFinite(loss)) throw new Error(`mlp_step: loss is ${loss}`);
    return ms;
  } finally {
    step.dispose();
    tree.dispose([p, m, s, x, y]);
  }
}

// Per-call overhead of adding two 1-element arrays, eager (no jit), in µs: 20,000 calls, then one blockUntilReady over
// all the results (jax-js is lazy, see the header: the calls only record kernels, the block runs them). Notes:
// - The operands are real device buffers. np.array([1]) would be a symbolic constant that jax-js folds in JS without
//   running any kernel (arrays of < 128 equal elements are kept as expressions).
// - The results are all kept until the block: a result disposed unevaluated is simply never computed.
// - A chain x = x + b without intermediate blocks is quadratic in jax-js (each result carries its whole pending
//   list), ~5 ms per call at 20,000, so that pattern is not what is measured.
// For reference, the same loop through jit(np.add) costs about 16-20 µs per call on this machine.
async function tinyOpRow(repeats: number): Promise<number> {
  const a = random.uniform(random.key(seed++), [1]),
    b = random.uniform(random.key(seed++), [1]);
  await blockUntilReady([a, b]);
  const pass = async (n: number) => {
    const t0 = performance.now();
    const outs: Arr[] = [];
    for (let i = 0; i < n; i++) outs.push(np.add(a.ref, b.ref));
    await blockUntilReady(outs);
    const us = ((performance.now() - t0) / n) * 1000;
    tree.dispose(outs);
    return us;
  };
  try {
    await pass(2000);
    const passes: number[] = [];
    for (let i = 0; i < Math.min(repeats, 3); i++) passes.push(await pass(20_000)); // ~1.5 s per pass
    const us = median(passes);
    console.error(`[jax] tiny_op_us: ${us.toFixed(2)} µs per call`);
    return us;
  } finally {
    tree.dispose([a, b]);
  }
}

export async function jaxPeer(opts: { repeats: number }): Promise<Record<string, number | null>> {
  const repeats = Math.max(1, Math.floor(opts.repeats));
  const devices = await init('wasm');
  if (!devices.includes('wasm')) throw new Error(`@jax-js/jax: wasm backend unavailable (got ${devices.join(', ')})`);
  defaultDevice('wasm');
  const rows: [string, () => Promise<number>][] = [
    ['matmul_256', () => matmulRow(256, repeats)],
    ['matmul_1024', () => matmulRow(1024, repeats)],
    ['matmul_2048', () => matmulRow(2048, Math.min(repeats, 3))], // ~0.55 s CPU per call; 3 repeats
    ['conv_fwd_bwd', () => convRow(repeats)],
    ['attention_fwd_bwd', () => attentionRow(repeats)],
    ['mlp_step', () => mlpRow(repeats)],
    ['tiny_op_us', () => tinyOpRow(repeats)],
  ];
  const out: Record<string, number | null> = {};
  for (const [name, row] of rows) {
    try {
      out[name] = await row();
    } catch (e) {
      console.warn(`[jax] ${name}: not measured, jax-js failed: ${(e as Error).message.split('\n')[0]}`);
      out[name] = null;
    }
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const repeats = Number(process.argv[2] ?? 5);
  const t0 = performance.now();
  const result = await jaxPeer({ repeats });
  console.error(`[jax] total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(JSON.stringify(result));
}
