// Text tokenization from a Hugging Face tokenizer.json (@huggingface/tokenizers), plus a builder for the WordLevel
// tokenizer mumu's own models use (the EmojiWorld vocabulary).
import { readFile, writeFile } from 'node:fs/promises';
import { Tokenizer } from '@huggingface/tokenizers';

// mumu's special tokens. Real checkpoints bring their own; fromJSON finds their usual spellings.
export const SPECIAL = { pad: '[PAD]', unk: '[UNK]', bos: '[BOS]', eos: '[EOS]', image: '<image>' } as const;
const SPELLINGS = {
  pad: ['[PAD]', '<pad>', '<|pad|>'],
  unk: ['[UNK]', '<unk>'],
  bos: ['[BOS]', '<s>', '<bos>', '<|begin_of_text|>', '<|startoftext|>'],
  eos: ['[EOS]', '</s>', '<eos>', '<|end_of_text|>', '<|endoftext|>'],
  image: ['<image>'],
};

interface TokenizerJson {
  model?: { type?: string; vocab?: Record<string, number> | unknown; unk_token?: string };
  added_tokens?: { id: number; content: string }[];
}

export class PromptTokenizer {
  readonly unkId: number;
  readonly padId: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly imageTokenId: number | undefined;
  readonly vocabSize: number;
  readonly #tok: Tokenizer;

  constructor(json: TokenizerJson) {
    this.#tok = new Tokenizer(json, {});
    const id = (names: readonly string[]) => names.map((n) => this.#tok.token_to_id(n)).find((v) => v !== undefined);
    const unk = json.model?.unk_token !== undefined ? this.#tok.token_to_id(json.model.unk_token) : id(SPELLINGS.unk);
    if (unk === undefined)
      throw new Error('tokenizer.json has no unknown token ([UNK] or <unk>), which out-of-vocabulary words need');
    this.unkId = unk;
    this.padId = id(SPELLINGS.pad) ?? unk;
    this.bosId = id(SPELLINGS.bos);
    this.eosId = id(SPELLINGS.eos);
    this.imageTokenId = id(SPELLINGS.image);
    this.vocabSize = this.#tok.get_vocab(true).size;
  }

  static async fromFile(path: string): Promise<PromptTokenizer> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      throw new Error(`cannot read tokenizer ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    try {
      return new PromptTokenizer(JSON.parse(text) as TokenizerJson);
    } catch (e) {
      throw new Error(`${path} is not a usable tokenizer.json (${(e as Error).message})`);
    }
  }

  // Ids of plain text, no special tokens added. @huggingface/tokenizers 0.2's WordLevel returns undefined for
  // out-of-vocabulary words instead of the unk id, so we map those ourselves. A special token typed into the text
  // (say a literal "<image>") becomes unk too: only real images may produce image tokens.
  encodeText(text: string): number[] {
    if (!text) return [];
    const { ids } = this.#tok.encode(text, { add_special_tokens: false });
    const special = new Set([this.imageTokenId, this.bosId, this.eosId, this.padId]);
    return ids.map((i: number | undefined) => (i === undefined || special.has(i) ? this.unkId : i));
  }

  tokens(text: string): string[] {
    return this.#tok.tokenize(text, { add_special_tokens: false });
  }

  decode(ids: number[]): string {
    return this.#tok.decode(ids, { skip_special_tokens: false });
  }

  idOf(token: string): number | undefined {
    return this.#tok.token_to_id(token);
  }
}

// A WordLevel tokenizer.json: lowercase, split on whitespace and punctuation (the Whitespace pre-tokenizer, regex
// \w+|[^\w\s]+), ids 0-4 the special tokens, then the words in the order given (duplicates dropped).
export function buildWordLevelTokenizer(words: Iterable<string>): object {
  const vocab: Record<string, number> = {};
  const specials = [SPECIAL.pad, SPECIAL.unk, SPECIAL.bos, SPECIAL.eos, SPECIAL.image];
  for (const s of specials) vocab[s] = Object.keys(vocab).length;
  for (const raw of words) {
    // a "word" may be a phrase ("dog face"); its pieces are what the pre-tokenizer will produce
    for (const w of raw.toLowerCase().match(/\w+|[^\w\s]+/gu) ?? [])
      if (!(w in vocab)) vocab[w] = Object.keys(vocab).length;
  }
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: { type: 'Lowercase' },
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: null,
    decoder: null,
    model: { type: 'WordLevel', vocab, unk_token: SPECIAL.unk },
  };
}

export async function writeWordLevelTokenizer(path: string, words: Iterable<string>): Promise<void> {
  await writeFile(path, JSON.stringify(buildWordLevelTokenizer(words), null, 1) + '\n');
}
