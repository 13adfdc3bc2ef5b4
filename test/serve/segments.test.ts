// Stored prompts <-> the CLI's text form: what a served PNG's `prompt` says, and how the page reads back PNGs that
// `mumu generate` wrote (whose metadata has only the text form).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promptText, parsePromptText } from '../../src/serve/segments.ts';
import { parsePromptText as cliParse } from '../../src/prompt/parse.ts';
import type { StoredSegment } from '../../src/serve/protocol.ts';

test('promptText writes what the CLI parses back to the same segments, and parsePromptText inverts it', () => {
  const cases: StoredSegment[][] = [
    [{ text: 'a ' }, { reference: 'prompt-1.png' }, { text: ' dog, 1 < 2 and <img:x.png> literally' }],
    [{ reference: 'prompt-1.png' }, { reference: 'prompt-2.png' }],
    [{ text: 'ends in a backslash \\' }, { reference: 'prompt-1.png' }, { text: ' dog' }],
  ];
  for (const segs of cases) {
    const text = promptText(segs);
    const cli = cliParse(text).map((p) => (p.kind === 'text' ? { text: p.text } : { reference: p.source as string }));
    const back = parsePromptText(text);
    assert.deepEqual(back, cli, text);
    if (!segs.some((s) => 'text' in s && s.text.endsWith('\\'))) assert.deepEqual(back, segs, text);
  }
  assert.equal(promptText(cases[0]!), 'a <img:prompt-1.png> dog, 1 \\< 2 and \\<img:x.png> literally');
  // the one lossy case: a space keeps the backslash from escaping the tag
  assert.equal(promptText(cases[2]!), 'ends in a backslash \\ <img:prompt-1.png> dog');
  // PNGs from `mumu generate` name their references by path
  assert.deepEqual(parsePromptText('a <img:examples/dog-face.png> dog face'), [
    { text: 'a ' },
    { reference: 'examples/dog-face.png' },
    { text: ' dog face' },
  ]);
});
