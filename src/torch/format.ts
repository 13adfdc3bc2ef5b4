// toString() that prints like PyTorch: tensor([[ 1.5410, -0.2934], ...], dtype=torch.float64, requires_grad=True).
import type { Tensor } from './tensor.ts';

const EDGE = 3; // PyTorch's edgeitems
const THRESHOLD = 1000; // summarise above this many elements, as torch's print options

function formatter(values: number[], dtype: string): (v: number) => string {
  if (dtype === 'bool') return (v) => (v ? 'True' : 'False');
  if (!dtype.startsWith('float') && dtype !== 'bfloat16') return (v) => String(v);
  const finite = values.filter((v) => Number.isFinite(v));
  const special = (v: number) => (Number.isNaN(v) ? 'nan' : v > 0 ? 'inf' : '-inf');
  if (finite.length === 0) return (v) => (Number.isFinite(v) ? String(v) : special(v));
  if (finite.every((v) => Number.isInteger(v))) {
    const big = Math.max(...finite.map(Math.abs)) > 1e8;
    return (v) =>
      !Number.isFinite(v) ? special(v) : big ? v.toExponential(4).replace(/e([+-])(\d)$/, 'e$10$2') : `${v}.`;
  }
  const abs = finite.map(Math.abs).filter((v) => v > 0);
  const hi = Math.max(...abs),
    lo = Math.min(...abs);
  const sci = hi / lo > 1000 || hi > 1e8 || lo < 1e-4;
  return (v) => {
    if (!Number.isFinite(v)) return special(v);
    return sci ? v.toExponential(4).replace(/e([+-])(\d)$/, 'e$10$2') : v.toFixed(4);
  };
}

export function formatTensor(t: Tensor): string {
  if (t.isDisposed) return 'tensor(<disposed>)';
  const suffix: string[] = [];
  if (t.device !== 'cpu') suffix.push(`device='${t.device}'`);
  const shape = t.shape;
  const summarise = t.numel > THRESHOLD;
  const data = t.toList();
  const flat: number[] = [];
  const gather = (x: unknown, depth: number) => {
    if (!Array.isArray(x)) return void flat.push(Number(x));
    const n = x.length;
    x.forEach((v, i) => {
      if (!summarise || n <= 2 * EDGE || i < EDGE || i >= n - EDGE) gather(v, depth + 1);
    });
  };
  gather(data, 0);
  const fmt = formatter(flat, t.dtype);
  const width = Math.max(0, ...flat.map((v) => fmt(v).length));
  const cell = (v: unknown) => fmt(Number(v)).padStart(width);
  const render = (x: unknown, depth: number): string => {
    if (!Array.isArray(x)) return cell(x);
    const n = x.length;
    const items: string[] = [];
    for (let i = 0; i < n; i++) {
      if (summarise && n > 2 * EDGE && i === EDGE) {
        items.push('...');
        i = n - EDGE - 1;
        continue;
      }
      items.push(render(x[i], depth + 1));
    }
    const innerDims = shape.length - depth - 1;
    const sep = innerDims === 0 ? ', ' : ',' + '\n'.repeat(innerDims) + ' '.repeat(8 + depth);
    return `[${items.join(sep)}]`;
  };
  let body = shape.length === 0 ? cell(data) : render(data, 0);
  if (t.numel === 0) {
    body = '[]';
    if (shape.length !== 1) suffix.unshift(`size=(${shape.join(', ')})`);
  }
  if (!['float32', 'int64', 'bool'].includes(t.dtype)) suffix.push(`dtype=torch.${t.dtype}`);
  if (t.requiresGrad) suffix.push('requires_grad=True');
  return `tensor(${[body, ...suffix].join(', ')})`;
}
