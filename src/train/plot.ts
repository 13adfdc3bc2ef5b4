// Loss curves as PNG: an SVG drawn here (log-scale y, raw losses faint, a smoothed line on top, axis ticks), turned
// into pixels by sharp's SVG renderer.
import sharp from 'sharp';

export interface Series { name: string; points: [number, number][]; color: string }

const esc = (s: string) => s.replace(/[<>&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]!);
const fmt = (v: number) => (v >= 100 || v === 0 ? v.toFixed(0) : v >= 1 ? v.toPrecision(3) : v.toPrecision(2));

// Exponential moving average, bias-corrected, as TensorBoard's smoothing.
export function smooth(values: number[], weight = 0.9): number[] {
  let last = 0, n = 0;
  return values.map((v) => {
    last = last * weight + (1 - weight) * v;
    n++;
    return last / (1 - weight ** n);
  });
}

export function lossSvg(title: string, series: Series[], { width = 720, height = 400 } = {}): string {
  const all = series.flatMap((s) => s.points).filter(([, y]) => Number.isFinite(y) && y > 0);
  const L = 64, R = 16, T = 32, B = 40;
  const pw = width - L - R, ph = height - T - B;
  const xs = all.map(([x]) => x), ys = all.map(([, y]) => Math.log10(y));
  const [x0, x1] = all.length ? [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)] : [0, 1];
  let [y0, y1] = all.length ? [Math.min(...ys), Math.max(...ys)] : [-1, 0];
  if (y1 - y0 < 0.1) [y0, y1] = [y0 - 0.05, y1 + 0.05];
  const px = (x: number) => L + ((x - x0) / (x1 - x0)) * pw;
  const py = (y: number) => T + (1 - (Math.log10(y) - y0) / (y1 - y0)) * ph;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${L}" y="20" font-size="14">${esc(title)}</text>`,
    `<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`,
  ];
  for (let k = 0; k <= 5; k++) {
    const ly = y0 + ((y1 - y0) * k) / 5, yy = T + (1 - k / 5) * ph;
    parts.push(`<line x1="${L}" x2="${L + pw}" y1="${yy}" y2="${yy}" stroke="#eee"/>`, `<text x="${L - 6}" y="${yy + 4}" text-anchor="end">${fmt(10 ** ly)}</text>`);
    const lx = x0 + ((x1 - x0) * k) / 5, xx = L + (k / 5) * pw;
    parts.push(`<text x="${xx}" y="${T + ph + 16}" text-anchor="middle">${Math.round(lx)}</text>`);
  }
  parts.push(`<text x="${L + pw / 2}" y="${height - 6}" text-anchor="middle">step</text>`);
  series.forEach((s, i) => {
    const pts = s.points.filter(([, y]) => Number.isFinite(y) && y > 0);
    if (!pts.length) return;
    const line = (p: [number, number][]) => p.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-opacity="0.25" points="${line(pts)}"/>`);
    const sm = smooth(pts.map(([, y]) => y));
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${line(pts.map(([x], k) => [x, sm[k]!]))}"/>`);
    parts.push(`<text x="${L + pw - 8}" y="${T + 16 + 14 * i}" text-anchor="end" fill="${s.color}">${esc(s.name)} (last ${fmt(sm.at(-1)!)})</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

export async function plotLoss(file: string, title: string, series: Series[]): Promise<void> {
  await sharp(Buffer.from(lossSvg(title, series))).png().toFile(file);
}
