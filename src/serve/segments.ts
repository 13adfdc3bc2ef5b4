// Stored prompts <-> the CLI's text form and URLs. No Node imports: the web page bundles this file too.
import type { StoredSegment } from './protocol.ts';

export const JOB_ID = /^[0-9a-z]{9}-[0-9a-f]{6}$/;

export const jobUrl = (id: string) => `/api/generations/${id}`;
export const imageUrl = (id: string, file: string) => `${jobUrl(id)}/images/${file}`;
export const referenceUrl = (id: string, name: string) => `${jobUrl(id)}/references/${name}`;

// The text form `mumu generate` reads: '<' escaped as '\<', references as <img:NAME>. A text ending in '\' right
// before a reference gets a space (the CLI would read '\<img:' as a literal '<'; it has no other escape).
export function promptText(segments: StoredSegment[]): string {
  return segments
    .map((s, i) => {
      if ('reference' in s) return `<img:${s.reference}>`;
      const text = s.text.replaceAll('<', '\\<');
      const next = segments[i + 1];
      return next && 'reference' in next && text.endsWith('\\') ? text + ' ' : text;
    })
    .join('');
}

// The inverse, for PNGs whose metadata has only the text form (those `mumu generate` wrote): references by the
// name or path inside <img:...>.
export function parsePromptText(text: string): StoredSegment[] {
  const out: StoredSegment[] = [];
  let buf = '';
  for (let i = 0; i < text.length; ) {
    if (text.startsWith('\\<', i)) {
      buf += '<';
      i += 2;
    } else if (text.startsWith('<img:', i) && text.indexOf('>', i) > 0) {
      const close = text.indexOf('>', i);
      if (buf) out.push({ text: buf });
      buf = '';
      out.push({ reference: text.slice(i + 5, close).trim() });
      i = close + 1;
    } else {
      buf += text[i];
      i += 1;
    }
  }
  if (buf) out.push({ text: buf });
  return out;
}
