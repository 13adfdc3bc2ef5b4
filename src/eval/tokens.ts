// Tokens per image (paper Finding 1) in the report: the table, the plot of the metrics against tokens per image, and
// the summary line.
import sharp from 'sharp';
import { aggregate, num, pct, type Output } from './aggregate.ts';

export const TOKENS_PLOT = 'tokens-per-image-plot.png';

export const TOKENS_NOTE = 'Two ways to vary what reaches the model from each reference. **Reference detail** (rows "r x r px"): the reference is '
  + 'area-reduced to r x r px and scaled back, then encoded at the ViT\'s native side: the tokens per image stay fixed, only the '
  + 'detail they carry shrinks. **Reference input side** (rows "S x S px input"): the full-detail reference is encoded at S x S px, '
  + 'so the ViT makes (S / patch)^2 tokens and the prompt carries that many image placeholders; the ViT\'s learned grid of position '
  + 'embeddings is resized to the new patch grid by bicubic interpolation (align_corners false, as timm / DINO\'s '
  + '`interpolate_pos_encoding`; exactly the trained embeddings at the native side). **This is one model, trained only at its native '
  + 'tokens per image, evaluated at other token counts**, not the paper\'s comparison of models trained at each count (its Figure 5): '
  + 'away from the native side the model sees position embeddings and sequence lengths it never trained on, so a drop there mixes '
  + 'that mismatch with the information the tokens carry. The perceiver\'s fixed-token variant (`use_perceiver` in the VLM config) '
  + 'was not trained: it needs its own training run; models trained at other counts are rows when the suite lists them under "models".';

export interface TokensTableInput {
  nativeTokens: number | null;
  mumuWhy: string | null; // why MUMU did not run, if it did not
  hasModels: boolean; // the suite lists variant models
  variantNotes: string[];
}

export function tokensTable(outs: Output[], o: TokensTableInput): string[] {
  const L = ['| system | reference input | n | preservation | (unrelated) | following | style | copy | copied |', '|---|---|---|---|---|---|---|---|---|'];
  const render = 'EmojiWorld render of the caption (reference point, not a generator)';
  const settings = [...new Set(outs.map((x) => x.case.setting!))];
  for (const s of settings) {
    const sel = outs.filter((x) => x.case.setting === s);
    for (const sys of [...new Set(sel.map((x) => x.system))]) {
      const a = aggregate(sel.filter((x) => x.system === sys));
      const sized = sel.some((x) => x.case.referenceSize !== undefined);
      const who = sys === 'render' ? render : s.startsWith('full, ') ? 'MUMU variant'
        : sized ? `MUMU (trained at ${o.nativeTokens ?? '?'} tokens/image)` : `MUMU (${o.nativeTokens ?? '?'} tokens/image)`;
      L.push(`| ${who} | ${s} | ${a.n} | ${num(a.preservation)} | ${num(a.control)} | ${pct(a.following)} | ${pct(a.style)} | ${num(a.copy)} | ${pct(a.copied)} |`);
    }
  }
  if (o.mumuWhy !== null) L.push(`| MUMU | – | 0 | ${o.mumuWhy} | | | | | |`);
  if (!o.hasModels) L.push('| models trained at other tokens per image (e.g. the perceiver\'s fixed set) | – | 0 | not available: none trained yet (list them under "models" in the suite) | | | | | |');
  for (const note of o.variantNotes) L.push(`| ${note.split(':')[0]} | – | 0 | ${note.slice(note.indexOf(':') + 2)} | | | | | |`);
  return L;
}

// MUMU's metrics per tokens-per-image setting (the input-side rows), ascending.
export function tokensCurve(outs: Output[]): { tokens: number; preservation: number; control: number; following: number; n: number }[] {
  const mu = outs.filter((x) => x.system === 'mumu' && x.case.tokensPerImage !== undefined && x.case.referenceSize !== undefined);
  const ts = [...new Set(mu.map((x) => x.case.tokensPerImage!))].sort((a, b) => a - b);
  return ts.map((t) => {
    const a = aggregate(mu.filter((x) => x.case.tokensPerImage === t));
    return { tokens: t, preservation: a.preservation, control: a.control, following: a.following, n: a.n };
  });
}

export function tokensSummary(outs: Output[], nativeTokens: number | null): string | null {
  const c = tokensCurve(outs);
  if (c.length < 2) return null;
  const sign = (x: number) => (Number.isNaN(x) ? '–' : `${x >= 0 ? '+' : ''}${x.toFixed(3)}`);
  return `- Tokens per image (Finding 1; one model trained at ${nativeTokens ?? '?'} tokens/image, references encoded at other sides), preservation `
    + `(gap to the unrelated control): ${c.map((p) => `${p.tokens} tokens ${num(p.preservation)} (${sign(p.preservation - p.control)})`).join(', ')}; `
    + `n = ${c.map((p) => p.n).join('/')} outputs per setting.`;
}

const esc = (s: string) => s.replace(/[<>&]/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[ch]!);

// A line plot with linear axes (the loss plotter in src/train/plot.ts draws log-scale, EMA-smoothed curves over
// steps, which would distort four metric points).
export function linePlotSvg(title: string, xLabel: string, series: { name: string; color: string; points: [number, number][] }[], { width = 640, height = 400 } = {}): string {
  const pts = series.flatMap((s) => s.points).filter(([, y]) => Number.isFinite(y));
  const L = 56, R = 16, T = 32, B = 44, pw = width - L - R, ph = height - T - B;
  const xs = [...new Set(pts.map(([x]) => x))].sort((a, b) => a - b);
  const [x0, x1] = xs.length > 1 ? [xs[0]!, xs.at(-1)!] : [(xs[0] ?? 0) - 1, (xs[0] ?? 0) + 1];
  let [y0, y1] = [Math.min(0, ...pts.map(([, y]) => y)), Math.max(1, ...pts.map(([, y]) => y))];
  if (y1 - y0 < 1e-6) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const px = (x: number) => L + ((x - x0) / (x1 - x0)) * pw, py = (y: number) => T + (1 - (y - y0) / (y1 - y0)) * ph;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    '<rect width="100%" height="100%" fill="white"/>',
    `<text x="${L}" y="20" font-size="14">${esc(title)}</text>`,
    `<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`,
  ];
  for (let k = 0; k <= 5; k++) {
    const y = y0 + ((y1 - y0) * k) / 5;
    out.push(`<line x1="${L}" x2="${L + pw}" y1="${py(y)}" y2="${py(y)}" stroke="#eee"/>`, `<text x="${L - 6}" y="${py(y) + 4}" text-anchor="end">${y.toFixed(2)}</text>`);
  }
  for (const x of xs) out.push(`<line x1="${px(x)}" x2="${px(x)}" y1="${T}" y2="${T + ph}" stroke="#eee"/>`, `<text x="${px(x)}" y="${T + ph + 16}" text-anchor="middle">${x}</text>`);
  out.push(`<text x="${L + pw / 2}" y="${height - 8}" text-anchor="middle">${esc(xLabel)}</text>`);
  series.forEach((s, i) => {
    const p = s.points.filter(([, y]) => Number.isFinite(y));
    if (!p.length) return;
    out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${p.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of p) out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${s.color}"/>`);
    out.push(`<text x="${L + pw - 8}" y="${T + 16 + 14 * i}" text-anchor="end" fill="${s.color}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

// The plot PNG; false when there are fewer than two settings to draw.
export async function writeTokensPlot(file: string, outs: Output[], nativeTokens: number | null): Promise<boolean> {
  const c = tokensCurve(outs);
  if (c.length < 2) return false;
  const svg = linePlotSvg(`MUMU trained at ${nativeTokens ?? '?'} tokens/image, references encoded at other sides`, 'tokens per image', [
    { name: 'preservation', color: '#1f77b4', points: c.map((p) => [p.tokens, p.preservation]) },
    { name: '(unrelated) control', color: '#999999', points: c.map((p) => [p.tokens, p.control]) },
    { name: 'following (fraction)', color: '#d62728', points: c.map((p) => [p.tokens, p.following]) },
  ]);
  await sharp(Buffer.from(svg)).png().toFile(file);
  return true;
}
