// A contact sheet so a person can look at what a run made: one row per sample, the target on the left and the
// multimodal prompt on the right with its images drawn inline where they sit in the text.
import sharp from 'sharp';
import type { EncodedSample } from './shards/reader.ts';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const dataUri = (png: Uint8Array) => `data:image/png;base64,${Buffer.from(png).toString('base64')}`;

export interface SheetOptions { width?: number; cell?: number; fontSize?: number }

export async function contactSheet(samples: readonly EncodedSample[], opts: SheetOptions = {}): Promise<Uint8Array> {
  const width = opts.width ?? 1100, cell = opts.cell ?? 96, font = opts.fontSize ?? 15;
  const inline = Math.round(cell * 0.6), lineH = inline + 6, charW = font * 0.61, pad = 8;
  const parts: string[] = [];
  let y = pad;
  for (const s of samples) {
    const rowTop = y;
    parts.push(`<image x="${pad}" y="${rowTop}" width="${cell}" height="${cell}" href="${dataUri(s.target)}"/>`);
    // Flow layout: words and images left to right, wrapping at the sheet's edge.
    const x0 = pad * 2 + cell;
    let x = x0, line = 0;
    const place = (w: number) => {
      if (x + w > width - pad && x > x0) { x = x0; line++; }
      const at = { x, y: rowTop + line * lineH };
      x += w;
      return at;
    };
    for (const seg of s.meta.prompt) {
      if (seg.type === 'text') {
        for (const word of seg.text.split(/(\s+)/).filter((w) => w.length)) {
          if (/^\s+$/.test(word)) { x += charW; continue; }
          const at = place(word.length * charW);
          parts.push(`<text x="${at.x}" y="${at.y + inline / 2 + font / 3}" font-family="DejaVu Sans Mono, monospace" font-size="${font}">${esc(word)}</text>`);
        }
      } else {
        const png = s.images[seg.index];
        if (!png) continue;
        const at = place(inline + 4);
        const color = seg.role === 'control' ? '#2a7' : seg.role === 'head' ? '#c3a' : '#36c';
        parts.push(`<image x="${at.x}" y="${at.y}" width="${inline}" height="${inline}" href="${dataUri(png)}"/>`);
        parts.push(`<rect x="${at.x}" y="${at.y}" width="${inline}" height="${inline}" fill="none" stroke="${color}" stroke-width="2"/>`);
      }
    }
    y = Math.max(rowTop + cell, rowTop + (line + 1) * lineH) + pad;
    parts.push(`<line x1="0" x2="${width}" y1="${y - pad / 2}" y2="${y - pad / 2}" stroke="#ddd"/>`);
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${width}" height="${y}"><rect width="100%" height="100%" fill="#fff"/>${parts.join('')}</svg>`;
  const buf = await sharp(Buffer.from(svg)).png().toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}
