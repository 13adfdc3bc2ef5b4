// Stored prompts <-> the CLI's text form and URLs. No Node imports (src/prompt/parse.ts has none either): the web
// page bundles this file too.
import type { StoredSegment } from './protocol.ts';
import { formatPrompt, parsePromptText as parseCliText, type PromptPart } from '../prompt/parse.ts';

export const JOB_ID = /^[0-9a-z]{9}-[0-9a-f]{6}$/;

export const jobUrl = (id: string) => `/api/generations/${id}`;
export const imageUrl = (id: string, file: string) => `${jobUrl(id)}/images/${file}`;
export const referenceUrl = (id: string, name: string) => `${jobUrl(id)}/references/${name}`;

// The text form `mumu generate` reads and writes (src/prompt/parse.ts): '<' escaped as '\<', references as
// <img:NAME>.
const toParts = (segments: StoredSegment[]): PromptPart[] =>
  segments.map((s) =>
    'reference' in s ? { kind: 'image', source: s.reference, where: '' } : { kind: 'text', text: s.text, where: '' },
  );
export const promptText = (segments: StoredSegment[]): string => formatPrompt(toParts(segments));

// The inverse, for PNGs whose metadata has only the text form (those `mumu generate` wrote): references by the
// name or path inside <img:...>.
export const parsePromptText = (text: string): StoredSegment[] =>
  parseCliText(text).map((p) => (p.kind === 'text' ? { text: p.text } : { reference: p.source as string }));
