// libtorch errors arrive as JS Errors carrying libtorch's message; the process never aborts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/torch/index.ts';
import { F } from '../../src/torch/index.ts';

test('shape mismatches', () => {
  assert.throws(
    () => t.ones([2, 3]).matmul(t.ones([2, 3])),
    /mat1 and mat2 shapes cannot be multiplied \(2x3 and 2x3\)/,
  );
  assert.throws(() => t.ones([2]).add(t.ones([3])), /size of tensor a \(2\) must match the size of tensor b \(3\)/);
  assert.throws(() => t.ones([6]).view(4, 2), /shape '\[4, 2\]' is invalid for input of size 6/);
  assert.throws(
    () => F.conv2d(t.ones([1, 2, 4, 4]), t.ones([3, 5, 3, 3])),
    /expected input\[1, 2, 4, 4\] to have 5 channels/,
  );
});

test('bad dtypes', () => {
  assert.throws(
    () => F.embedding(t.ones([3, 2]), t.tensor([0.5])),
    /Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int/,
  );
  assert.throws(() => t.ones([2]).to('complex' as never), /unknown dtype 'complex'/);
  assert.throws(
    () => t.ones([2, 2]).matmul(t.ones([2, 2], { dtype: 'float64' })),
    /expected .*(same dtype|scalar type)/i,
  );
});

test('out-of-range indices and dims', () => {
  assert.throws(() => t.ones([2, 2]).select(0, 5), /index 5 out of range for tensor of size \[2, 2\] at dimension 0/);
  assert.throws(() => t.ones([2]).sum(3), /Dimension out of range/);
  assert.throws(() => F.embedding(t.ones([3, 2]), t.tensor([7], { dtype: 'int64' })), /index out of range/);
  assert.throws(
    () => t.ones([2]).indexSelect(0, t.tensor([9], { dtype: 'int64' })),
    /out of range|INDICES element is out of DATA bounds|index/i,
  );
});

test('misuse of the API gives a clear error', () => {
  assert.throws(
    () => t.ones([2]).backward(),
    /grad can be implicitly created only for scalar outputs|does not require grad/,
  );
  assert.throws(() => t.ones([2]).add('x' as never), /expected a Tensor/);
  assert.throws(() => t.ones([2]).to('cuda:7'), /CUDA|cuda/);
  // and the engine still works afterwards
  assert.equal(t.ones([2]).sum().item(), 2);
});
