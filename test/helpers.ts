// Shared test helpers: closeness checks, finite-difference gradient checks (float64), pixels up to rounding.
import assert from 'node:assert/strict';
import { Tensor, noGrad, tensor } from '../src/torch/index.ts';

export function flat(x: Tensor | number[] | unknown): number[] {
  if (x instanceof Tensor) return Array.from(x.double().toArray() as Float64Array);
  return (x as unknown[]).flat(Infinity as 1) as number[];
}

export function assertClose(
  actual: Tensor | number[],
  expected: Tensor | number[] | unknown[],
  tol = 1e-5,
  msg = '',
): void {
  const a = flat(actual),
    e = flat(expected);
  assert.equal(a.length, e.length, `${msg} length ${a.length} != ${e.length}`);
  for (let i = 0; i < a.length; i++) {
    const ok =
      Math.abs(a[i]! - e[i]!) <= tol * Math.max(1, Math.abs(e[i]!)) || (Number.isNaN(a[i]) && Number.isNaN(e[i]));
    assert.ok(ok, `${msg} element ${i}: ${a[i]} != ${e[i]} (tol ${tol})`);
  }
}

// Checks autograd against central differences of f's scalar output for every element of every input.
export function gradCheck(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], { eps = 1e-6, tol = 1e-5 } = {}): void {
  const xs = inputs.map((x) => x.double().detach().requiresGrad_(true));
  // Weight the output with fixed pseudo-random numbers so every output element matters.
  const out0 = f(...xs);
  const w = tensor(
    Array.from({ length: out0.numel }, (_, i) => Math.sin(i * 12.9898 + 1) * 0.5 + 0.7),
    { dtype: 'float64' },
  ).reshape(...out0.shape);
  out0.mul(w).sum().backward();
  for (const [k, x] of xs.entries()) {
    const analytic = flat(x.grad ?? tensor(new Float64Array(x.numel)));
    const base = flat(x);
    const numeric = base.map((_, i) => {
      const at = (d: number) =>
        noGrad(() => {
          const v = base.slice();
          v[i] = v[i]! + d;
          const args = xs.map((y, j) => (j === k ? tensor(Float64Array.from(v), { shape: [...x.shape] }) : y.detach()));
          return f(...args)
            .mul(w)
            .sum()
            .item();
        });
      return (at(eps) - at(-eps)) / (2 * eps);
    });
    assertClose(analytic, numeric, tol, `grad of input ${k}`);
  }
}

// Pixels of two renders that went through different float32 computations (a batch of n vs a batch of 1: the float
// images differ by a few 1e-6) are the same up to one 8-bit rounding step.
export function assertPixelsWithinOneStep(a: Uint8Array, b: Uint8Array): void {
  assert.equal(a.length, b.length);
  assert.ok(
    a.every((v, i) => Math.abs(v - b[i]!) <= 1),
    'pixels differ by more than one 8-bit step',
  );
}
