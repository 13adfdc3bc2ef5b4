// Line plots as PNG, for the training loss curves (log-scale y, raw values faint under an EMA-smoothed line) and the
// evaluation's metric-vs-setting plots (linear y, one marker per point): an SVG drawn here, turned into pixels by
// sharp's SVG renderer.
import sharp from 'sharp';

export interface Series {
  name: string;
  points: [number, number][];
  color: string;
}

export interface PlotOptions {
  xLabel?: string;
  logY?: boolean; // log10 y axis (points <= 0 are dropped)
  smoothing?: number; // > 0: draw the raw line faint and an EMA with this weight on top, labelled with its last value
  markers?: boolean; // a dot per point and a grid line / tick at every distinct x
  yRange?: [number, number]; // linear y: at least this range (e.g. [0, 1] for fractions and cosines)
  width?: number;
  height?: number;
}

const esc = (s: string) => s.replace(/[<>&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]!);
const fmt = (v: number) => (v >= 100 || v === 0 ? v.toFixed(0) : v >= 1 ? v.toPrecision(3) : v.toPrecision(2));

// Exponential moving average, bias-corrected, as TensorBoard's smoothing.
export function smooth(values: number[], weight = 0.9): number[] {
  let last = 0,
    n = 0;
  return values.map((v) => {
    last = last * weight + (1 - weight) * v;
    n++;
    return last / (1 - weight ** n);
  });
}

export function linePlotSvg(title: string, series: Series[], o: PlotOptions = {}): string {
  const { xLabel = 'step', logY = false, smoothing = 0, markers = false, width = 720, height = 400 } = o;
  const usable = ([, y]: [number, number]) => Number.isFinite(y) && (!logY || y > 0);
  const ty = (y: number) => (logY ? Math.log10(y) : y);
  const all = series.flatMap((s) => s.points).filter(usable);
  const L = 64,
    R = 16,
    T = 32,
    B = 44;
  const pw = width - L - R,
    ph = height - T - B;
  const xs = [...new Set(all.map(([x]) => x))].sort((a, b) => a - b);
  const [x0, x1] = xs.length > 1 ? [xs[0]!, xs.at(-1)!] : [(xs[0] ?? 0) - 1, (xs[0] ?? 0) + 1];
  const ys = all.map(([, y]) => ty(y));
  const [lo, hi] = o.yRange && !logY ? o.yRange : [Infinity, -Infinity];
  let [y0, y1] = ys.length ? [Math.min(lo, ...ys), Math.max(hi, ...ys)] : logY ? [-1, 0] : [0, 1];
  const pad = logY ? 0.1 : 1e-6;
  if (y1 - y0 < pad) [y0, y1] = [y0 - (logY ? 0.05 : 0.5), y1 + (logY ? 0.05 : 0.5)];
  const px = (x: number) => L + ((x - x0) / (x1 - x0)) * pw;
  const py = (y: number) => T + (1 - (ty(y) - y0) / (y1 - y0)) * ph;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${L}" y="20" font-size="14">${esc(title)}</text>`,
    `<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`,
  ];
  for (let k = 0; k <= 5; k++) {
    const v = y0 + ((y1 - y0) * k) / 5,
      yy = T + (1 - k / 5) * ph;
    parts.push(
      `<line x1="${L}" x2="${L + pw}" y1="${yy}" y2="${yy}" stroke="#eee"/>`,
      `<text x="${L - 6}" y="${yy + 4}" text-anchor="end">${logY ? fmt(10 ** v) : v.toFixed(2)}</text>`,
    );
  }
  const xTicks = markers ? xs : [0, 1, 2, 3, 4, 5].map((k) => Math.round(x0 + ((x1 - x0) * k) / 5));
  for (const x of xTicks) {
    if (markers) parts.push(`<line x1="${px(x)}" x2="${px(x)}" y1="${T}" y2="${T + ph}" stroke="#eee"/>`);
    parts.push(`<text x="${px(x)}" y="${T + ph + 16}" text-anchor="middle">${x}</text>`);
  }
  parts.push(`<text x="${L + pw / 2}" y="${height - 8}" text-anchor="middle">${esc(xLabel)}</text>`);
  const line = (p: [number, number][]) => p.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
  series.forEach((s, i) => {
    const pts = s.points.filter(usable);
    if (!pts.length) return;
    let label = s.name;
    if (smoothing > 0) {
      parts.push(`<polyline fill="none" stroke="${s.color}" stroke-opacity="0.25" points="${line(pts)}"/>`);
      const sm = smooth(
        pts.map(([, y]) => y),
        smoothing,
      );
      parts.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${line(pts.map(([x], k) => [x, sm[k]!]))}"/>`,
      );
      label = `${s.name} (last ${fmt(sm.at(-1)!)})`;
    } else parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${line(pts)}"/>`);
    if (markers)
      for (const [x, y] of pts)
        parts.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${s.color}"/>`);
    parts.push(
      `<text x="${L + pw - 8}" y="${T + 16 + 14 * i}" text-anchor="end" fill="${s.color}">${esc(label)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

export async function writePlot(file: string, title: string, series: Series[], o: PlotOptions = {}): Promise<void> {
  await sharp(Buffer.from(linePlotSvg(title, series, o)))
    .png()
    .toFile(file);
}

// A training loss curve: log scale, smoothed.
export const plotLoss = (file: string, title: string, series: Series[]): Promise<void> =>
  writePlot(file, title, series, { logY: true, smoothing: 0.9 });
