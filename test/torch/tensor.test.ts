import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/torch/index.ts';
import { assertClose } from '../helpers.ts';

test('seeded generators reproduce PyTorch CPU streams', () => {
  // torch.randn(5, generator=torch.Generator().manual_seed(42)) etc., computed once with PyTorch 1.13.
  assertClose(
    t.randn([5], { generator: new t.Generator(42) }),
    [0.33669036626815796, 0.12880940735340118, 0.23446236550807953, 0.23033303022384644, -1.1228563785552979],
    1e-7,
  );
  assertClose(
    t.rand([3], { generator: new t.Generator(7) }),
    [0.5349225401878357, 0.19880318641662598, 0.6592116951942444],
    1e-7,
  );
  assert.deepEqual(t.randint(0, 10, [6], { generator: new t.Generator(3) }).toList(), [6, 8, 7, 7, 0, 0]);
  assert.deepEqual(t.randperm(6, { generator: new t.Generator(1) }).toList(), [1, 5, 2, 0, 3, 4]);
});

test('generator state saves and restores exactly', () => {
  const g = new t.Generator(123);
  t.randn([10], { generator: g });
  const state = g.getState();
  const a = t.randn([4, 4], { generator: g });
  g.setState(state);
  const b = t.randn([4, 4], { generator: g });
  assert.ok(t.equal(a, b));
  const c = t.randn([4, 4], { generator: g });
  assert.ok(!t.equal(b, c));
});

test('factories: shapes, dtypes and values', () => {
  assert.deepEqual(t.zeros([2, 3]).shape, [2, 3]);
  assert.equal(t.zeros([2]).dtype, 'float32');
  assert.deepEqual(t.ones([2], { dtype: 'int32' }).toList(), [1, 1]);
  assert.deepEqual(t.full([2], 7, { dtype: 'int64' }).toList(), [7, 7]);
  assert.deepEqual(t.arange(5).toList(), [0, 1, 2, 3, 4]);
  assert.equal(t.arange(5).dtype, 'int64');
  assertClose(t.arange(0, 1, 0.25), [0, 0.25, 0.5, 0.75]);
  assertClose(t.linspace(-1, 1, 5), [-1, -0.5, 0, 0.5, 1]);
  assert.deepEqual(t.eye(2, 3).toList(), [
    [1, 0, 0],
    [0, 1, 0],
  ]);
  assert.deepEqual(
    t.tensor([
      [1, 2],
      [3, 4],
    ]).shape,
    [2, 2],
  );
  assert.throws(() => t.tensor([[1, 2], [3]]), /ragged/);
});

test('every dtype converts to and from typed arrays', () => {
  const x = t.tensor([1.5, -2, 3.25]);
  for (const d of ['float32', 'float64', 'float16', 'bfloat16'] as const) {
    assertClose(x.to(d).float(), [1.5, -2, 3.25], 0, d); // all three are exact in every float format
    assert.equal(x.to(d).dtype, d);
  }
  assert.deepEqual(Array.from(x.to('int64').toArray() as BigInt64Array), [1n, -2n, 3n]);
  assert.deepEqual(Array.from(x.to('int32').toArray() as Int32Array), [1, -2, 3]);
  assert.deepEqual(Array.from(t.tensor([0, 1, 255], { dtype: 'uint8' }).toArray() as Uint8Array), [0, 1, 255]);
  assert.deepEqual(t.tensor([true, false]).toList(), [true, false]);
  // float16 bits of 1.5 are 0x3e00, bfloat16's are 0x3fc0
  assert.equal((x.to('float16').toArray() as Uint16Array)[0], 0x3e00);
  assert.equal((x.to('bfloat16').toArray() as Uint16Array)[0], 0x3fc0);
  const f = new Float32Array([1, 2, 3, 4, 5, 6]);
  const y = t.tensor(f, { shape: [2, 3] });
  f[0] = 100; // the tensor holds its own copy
  assert.deepEqual(y.toList(), [
    [1, 2, 3],
    [4, 5, 6],
  ]);
  const out = y.toArray() as Float32Array;
  out[0] = -1; // and toArray() never aliases tensor memory
  assert.equal(y.select(0, 0).select(0, 0).item(), 1);
  assert.throws(() => t.fromBytes(new Uint8Array(5), [2], 'float32'), /bytes/);
});

test('toString prints like PyTorch', () => {
  assert.equal(
    String(t.randn([2, 3], { generator: new t.Generator(0) })),
    'tensor([[ 1.5410, -0.2934, -2.1788],\n        [ 0.5684, -1.0845, -1.3986]])',
  );
  assert.equal(
    String(
      t
        .tensor(
          [
            [1, 2],
            [3, 4],
          ],
          { dtype: 'float64' },
        )
        .requiresGrad_(),
    ),
    'tensor([[1., 2.],\n        [3., 4.]], dtype=torch.float64, requires_grad=True)',
  );
  assert.equal(String(t.arange(3)), 'tensor([0, 1, 2])');
  assert.equal(String(t.tensor(3.5)), 'tensor(3.5000)');
  assert.equal(String(t.tensor([true, false])), 'tensor([ True, False])');
  assert.equal(String(t.tensor([1e-5, 1])), 'tensor([1.0000e-05, 1.0000e+00])');
  assert.equal(String(t.zeros([0, 3])), 'tensor([], size=(0, 3))');
  assert.match(String(t.zeros([40, 40])), /\.\.\./);
});

test('item, to, contiguous, clone and detach', () => {
  const x = t.tensor([
    [1, 2],
    [3, 4],
  ]);
  assert.equal(x.sum().item(), 10);
  assert.throws(() => x.item(), /one element/);
  const tr = x.transpose(0, 1);
  assert.equal(tr.isContiguous, false);
  assert.equal(tr.contiguous().isContiguous, true);
  assert.deepEqual(tr.toList(), [
    [1, 3],
    [2, 4],
  ]);
  const c = x.clone();
  c.add_(1);
  assert.deepEqual(x.toList(), [
    [1, 2],
    [3, 4],
  ]);
  assert.equal(x.to('cpu').device, 'cpu');
  assert.equal(x.to({ dtype: 'float64', device: 'cpu' }).dtype, 'float64');
});

test('dispose frees at once and tidy frees all but the result', () => {
  const x = t.ones([3]);
  x.dispose();
  assert.equal(x.isDisposed, true);
  assert.throws(() => x.add(1), /disposed/);
  let inner: t.Tensor[] = [];
  const kept = t.tidy(() => {
    const a = t.ones([2]);
    const b = a.mul(3);
    inner = [a, b];
    return { out: b.add(1) };
  });
  assert.ok(inner.every((v) => v.isDisposed));
  assert.deepEqual(kept.out.toList(), [4, 4]);
  const nested = t.tidy(() => t.tidy(() => t.ones([1]).mul(2)).add(1));
  assert.deepEqual(nested.toList(), [3]);
});

test('threads default to the machine and can be set', async () => {
  const { availableParallelism } = await import('node:os');
  if (!process.env.MUMU_NUM_THREADS) assert.equal(t.getNumThreads(), availableParallelism());
  const before = t.getNumThreads();
  t.setNumThreads(1);
  assert.equal(t.getNumThreads(), 1);
  t.setNumThreads(before);
});
