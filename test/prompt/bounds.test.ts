// The prompt's length bound, in both prompt forms (text and segments), before anything is tokenized.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePrompt, MAX_PROMPT_CHARS, PromptError } from '../../src/prompt/index.ts';

test('prompts up to MAX_PROMPT_CHARS characters parse; longer ones are refused naming the limit', () => {
  assert.equal(MAX_PROMPT_CHARS, 20_000);
  assert.equal(parsePrompt('x'.repeat(MAX_PROMPT_CHARS)).length, 1);
  assert.equal(parsePrompt(['x'.repeat(10_000), { text: 'y'.repeat(10_000) }]).length, 2);
  const tooLong = /^prompt: is 20,001 characters long; mumu takes at most 20,000$/;
  assert.throws(
    () => parsePrompt('x'.repeat(MAX_PROMPT_CHARS + 1)),
    (e: Error) => e instanceof PromptError && tooLong.test(e.message),
  );
  assert.throws(
    () => parsePrompt(['x'.repeat(10_000), { image: 'a.png' }, { text: 'y'.repeat(10_001) }]),
    (e: Error) => tooLong.test(e.message),
  );
});
