// Tokens per image (paper Finding 1) in the report: the table, the plot of the metrics against tokens per image, and
// the summary line.
import { writePlot } from '../plot.ts';
import { aggregate, num, pct, type Output } from './aggregate.ts';

export const TOKENS_PLOT = 'tokens-per-image-plot.png';

export const TOKENS_NOTE =
  'Two ways to vary what reaches the model from each reference. **Reference detail** (rows "r x r px"): the reference is ' +
  "area-reduced to r x r px and scaled back, then encoded at the ViT's native side: the tokens per image stay fixed, only the " +
  'detail they carry shrinks. **Reference input side** (rows "S x S px input"): the full-detail reference is encoded at S x S px, ' +
  "so the ViT makes (S / patch)^2 tokens and the prompt carries that many image placeholders; the ViT's learned grid of position " +
  "embeddings is resized to the new patch grid by bicubic interpolation (align_corners false, as timm / DINO's " +
  '`interpolate_pos_encoding`; exactly the trained embeddings at the native side). **This is one model, trained only at its native ' +
  "tokens per image, evaluated at other token counts**, not the paper's comparison of models trained at each count (its Figure 5): " +
  'away from the native side the model sees position embeddings and sequence lengths it never trained on, so a drop there mixes ' +
  "that mismatch with the information the tokens carry. The perceiver's fixed-token variant (`use_perceiver` in the VLM config) " +
  'was not trained: it needs its own training run; models trained at other counts are rows when the suite lists them under "models".';

export interface TokensTableInput {
  nativeTokens: number | null;
  mumuWhy: string | null; // why MUMU did not run, if it did not
  hasModels: boolean; // the suite lists variant models
  variantNotes: string[];
}

export function tokensTable(outs: Output[], o: TokensTableInput): string[] {
  const L = [
    '| system | reference input | n | preservation | (unrelated) | following | style | copy | copied |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  const render = 'EmojiWorld render of the caption (reference point, not a generator)';
  const settings = [...new Set(outs.map((x) => x.case.setting!))];
  for (const s of settings) {
    const sel = outs.filter((x) => x.case.setting === s);
    for (const sys of [...new Set(sel.map((x) => x.system))]) {
      const a = aggregate(sel.filter((x) => x.system === sys));
      const sized = sel.some((x) => x.case.referenceSize !== undefined);
      const who =
        sys === 'render'
          ? render
          : s.startsWith('full, ')
            ? 'MUMU variant'
            : sized
              ? `MUMU (trained at ${o.nativeTokens ?? '?'} tokens/image)`
              : `MUMU (${o.nativeTokens ?? '?'} tokens/image)`;
      L.push(
        `| ${who} | ${s} | ${a.n} | ${num(a.preservation)} | ${num(a.control)} | ${pct(a.following)} | ${pct(a.style)} | ${num(a.copy)} | ${pct(a.copied)} |`,
      );
    }
  }
  if (o.mumuWhy !== null) L.push(`| MUMU | – | 0 | ${o.mumuWhy} | | | | | |`);
  if (!o.hasModels)
    L.push(
      '| models trained at other tokens per image (e.g. the perceiver\'s fixed set) | – | 0 | not available: none trained yet (list them under "models" in the suite) | | | | | |',
    );
  for (const note of o.variantNotes)
    L.push(`| ${note.split(':')[0]} | – | 0 | ${note.slice(note.indexOf(':') + 2)} | | | | | |`);
  return L;
}

// MUMU's metrics per tokens-per-image setting (the input-side rows), ascending.
export function tokensCurve(
  outs: Output[],
): { tokens: number; preservation: number; control: number; following: number; n: number }[] {
  const mu = outs.filter(
    (x) => x.system === 'mumu' && x.case.tokensPerImage !== undefined && x.case.referenceSize !== undefined,
  );
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
  return (
    `- Tokens per image (Finding 1; one model trained at ${nativeTokens ?? '?'} tokens/image, references encoded at other sides), preservation ` +
    `(gap to the unrelated control): ${c.map((p) => `${p.tokens} tokens ${num(p.preservation)} (${sign(p.preservation - p.control)})`).join(', ')}; ` +
    `n = ${c.map((p) => p.n).join('/')} outputs per setting.`
  );
}

// The plot PNG; false when there are fewer than two settings to draw.
export async function writeTokensPlot(file: string, outs: Output[], nativeTokens: number | null): Promise<boolean> {
  const c = tokensCurve(outs);
  if (c.length < 2) return false;
  await writePlot(
    file,
    `MUMU trained at ${nativeTokens ?? '?'} tokens/image, references encoded at other sides`,
    [
      { name: 'preservation', color: '#1f77b4', points: c.map((p) => [p.tokens, p.preservation]) },
      { name: '(unrelated) control', color: '#999999', points: c.map((p) => [p.tokens, p.control]) },
      { name: 'following (fraction)', color: '#d62728', points: c.map((p) => [p.tokens, p.following]) },
    ],
    { xLabel: 'tokens per image', markers: true, yRange: [0, 1], width: 640 },
  );
  return true;
}
