// The multimodal prompt's two forms, reduced to one list of parts. Text form (what the CLI takes):
//   a <img:dog.png> dog and a <img:rocket.png> rocket, in <img:style.png> style
// where every `<` opens an image tag, `\<` is a literal `<`, and paths are relative to the working folder.
// API form: an array of text strings and { image } segments, taken literally (no tags, no escapes).

// Pixels as an API caller hands them in: row-major, 8 bits per channel, RGBA unless channels says otherwise (a
// canvas ImageData fits as it is). Checked, then read like a file, by prompt/image.ts; inside mumu images are
// src/image's RawImage.
export interface PixelsInput {
  width: number;
  height: number;
  data: Uint8Array | Uint8ClampedArray;
  channels?: 1 | 3 | 4;
}
// A file path, encoded bytes (PNG, JPEG, WebP, ...), or pixels.
export type ImageInput = string | Uint8Array | PixelsInput;
export type PromptSegment = string | { text: string } | { image: ImageInput };
export type PromptInput = string | PromptSegment[];

export interface TextPart {
  kind: 'text';
  text: string;
  where: string;
}
export interface ImagePart {
  kind: 'image';
  source: ImageInput;
  where: string;
}
export type PromptPart = TextPart | ImagePart;

// A bad prompt. `where` names the offending spot ("column 7", "segment 3"), for one-line CLI errors.
export class PromptError extends Error {
  constructor(
    readonly detail: string,
    readonly where?: string,
    readonly subject = 'prompt',
  ) {
    super(where ? `${subject} ${where}: ${detail}` : `${subject}: ${detail}`);
    this.name = 'PromptError';
  }
  // the same error about another prompt ("negative prompt")
  about(subject: string): PromptError {
    return new PromptError(this.detail, this.where, subject);
  }
}

const TAG = '<img:';

// A prompt's text is bounded before anything reads it: far above what any model here takes in tokens (the model's
// own token limit is checked when the prompt is encoded), far below what would stall tokenizing.
export const MAX_PROMPT_CHARS = 20_000;
function checkLength(chars: number): void {
  if (chars > MAX_PROMPT_CHARS) {
    throw new PromptError(
      `is ${chars.toLocaleString('en')} characters long; mumu takes at most ${MAX_PROMPT_CHARS.toLocaleString('en')}`,
    );
  }
}

// A short excerpt of the prompt starting at i, for messages.
const excerpt = (s: string, i: number, n = 24) =>
  JSON.stringify(s.length - i > n ? s.slice(i, i + n) + '...' : s.slice(i));

export function parsePromptText(prompt: string): PromptPart[] {
  checkLength(prompt.length);
  const parts: PromptPart[] = [];
  let text = '';
  let textStart = 0;
  const flush = () => {
    if (text) parts.push({ kind: 'text', text, where: `column ${textStart + 1}` });
    text = '';
  };
  for (let i = 0; i < prompt.length;) {
    const c = prompt[i]!;
    if (c === '\\' && prompt[i + 1] === '<') {
      if (!text) textStart = i;
      text += '<';
      i += 2;
    } else if (c === '<') {
      const col = `column ${i + 1}`;
      if (!prompt.startsWith(TAG, i)) {
        throw new PromptError(
          `'<' opens an image tag, but ${excerpt(prompt, i)} is not '<img:PATH>' (write \\< for a literal '<')`,
          col,
        );
      }
      const close = prompt.indexOf('>', i);
      const nextOpen = prompt.indexOf('<', i + 1);
      if (close < 0 || (nextOpen >= 0 && nextOpen < close)) {
        throw new PromptError(`unclosed image tag ${excerpt(prompt, i)} (end it with '>')`, col);
      }
      const path = prompt.slice(i + TAG.length, close).trim();
      if (!path) throw new PromptError(`empty image tag '${prompt.slice(i, close + 1)}' (write <img:PATH>)`, col);
      flush();
      parts.push({ kind: 'image', source: path, where: col });
      i = close + 1;
      textStart = i;
    } else {
      if (!text) textStart = i;
      text += c;
      i += 1;
    }
  }
  flush();
  return parts;
}

const isPixels = (x: unknown): x is PixelsInput =>
  typeof x === 'object' && x !== null && 'width' in x && 'height' in x && 'data' in x;

export function parsePrompt(prompt: PromptInput): PromptPart[] {
  if (typeof prompt === 'string') return parsePromptText(prompt);
  if (!Array.isArray(prompt)) throw new PromptError('expected a string or an array of text and { image } segments');
  checkLength(
    prompt.reduce(
      (n, seg) =>
        n +
        (typeof seg === 'string'
          ? seg.length
          : seg && typeof seg === 'object' && 'text' in seg && typeof seg.text === 'string'
            ? seg.text.length
            : 0),
      0,
    ),
  );
  return prompt.map((seg, k): PromptPart => {
    const where = `segment ${k + 1}`;
    if (typeof seg === 'string') return { kind: 'text', text: seg, where };
    if (seg && typeof seg === 'object' && 'text' in seg && typeof seg.text === 'string')
      return { kind: 'text', text: seg.text, where };
    if (seg && typeof seg === 'object' && 'image' in seg) {
      const img = seg.image;
      if (typeof img === 'string' || img instanceof Uint8Array || isPixels(img))
        return { kind: 'image', source: img, where };
      throw new PromptError(
        'an image must be a file path, encoded image bytes, or { width, height, data } pixels',
        where,
      );
    }
    throw new PromptError('expected a string, { text } or { image }', where);
  });
}

// True when there is nothing to condition on: no image and no non-blank text.
export const isEmptyPrompt = (parts: PromptPart[]) => parts.every((p) => p.kind === 'text' && !p.text.trim());

// The prompt written back in text form (escaping '<'), for PNG metadata and logs; non-path images show as <img:#k>.
// A text ending in '\' right before an image gets a space: '\<img:' would read back as a literal '<' (the text form
// has no other escape), so that one case does not round-trip exactly.
export function formatPrompt(parts: PromptPart[]): string {
  let k = 0;
  return parts
    .map((p, i) => {
      if (p.kind === 'image') {
        k++;
        return typeof p.source === 'string' ? `<img:${p.source}>` : `<img:#${k}>`;
      }
      const text = p.text.replaceAll('<', '\\<');
      return parts[i + 1]?.kind === 'image' && text.endsWith('\\') ? `${text} ` : text;
    })
    .join('');
}
