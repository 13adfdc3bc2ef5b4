// Typed configs read verbatim from diffusers / transformers `config.json` files. Every key is either one mumu
// implements (with its upstream default), one mumu accepts only at one value (a feature it lacks: any other value
// is an error, not a silent mismatch; checked before metadata), or metadata (`_class_name`, `architectures`, ...). Anything else
// is rejected with the list of keys that are known, so a typo or an unsupported model fails at load time.
import fs from 'node:fs';

// Keys the libraries write about the file, the tokenizer or generation rather than the architecture. transformers
// sometimes serialises a nested config with every PretrainedConfig attribute, so the generic ones are all here.
const METADATA = new Set([
  'architectures', 'model_type', 'torch_dtype', 'dtype', 'transformers_version', 'auto_map', 'use_cache', 'return_dict',
  'output_hidden_states', 'output_attentions', 'torchscript', 'use_bfloat16', 'tf_legacy_loss', 'pruned_heads',
  'initializer_range', 'initializer_factor', 'pad_token_id', 'bos_token_id', 'eos_token_id', 'sep_token_id',
  'decoder_start_token_id', 'tie_word_embeddings', 'tie_encoder_decoder', 'is_encoder_decoder', 'is_decoder',
  'add_cross_attention', 'cross_attention_hidden_size', 'chunk_size_feed_forward', 'problem_type', 'finetuning_task',
  'id2label', 'label2id', 'tokenizer_class', 'prefix', 'task_specific_params', 'max_length', 'min_length', 'do_sample',
  'early_stopping', 'num_beams', 'num_beam_groups', 'diversity_penalty', 'temperature', 'top_k', 'top_p', 'typical_p',
  'repetition_penalty', 'length_penalty', 'no_repeat_ngram_size', 'encoder_no_repeat_ngram_size', 'bad_words_ids',
  'num_return_sequences', 'output_scores', 'return_dict_in_generate', 'forced_bos_token_id', 'forced_eos_token_id',
  'remove_invalid_values', 'exponential_decay_length_penalty', 'suppress_tokens', 'begin_suppress_tokens',
]);

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
const kind = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

export interface ConfigSpec<T> {
  defaults: T; // every implemented key with its upstream default
  unsupported?: Record<string, unknown>; // key -> the only accepted value
  // keys whose value may be one of several JSON kinds (e.g. number or number[]); others must match the default's kind
  flexible?: (keyof T)[];
}

export function parseConfig<T extends object>(name: string, raw: unknown, spec: ConfigSpec<T>): T {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${name} config: expected a JSON object`);
  const out: Record<string, unknown> = { ...(spec.defaults as Record<string, unknown>) };
  const unknown: string[] = [];
  const problems: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    if (key in spec.defaults) {
      const d = (spec.defaults as Record<string, unknown>)[key];
      const flexible = spec.flexible?.includes(key as keyof T) || d === null || value === null;
      if (!flexible && kind(d) !== kind(value)) problems.push(`${key} must be ${kind(d)}, got ${JSON.stringify(value)}`);
      out[key] = value;
    } else if (spec.unsupported && key in spec.unsupported) {
      if (!same(value, spec.unsupported[key])) problems.push(`${key} = ${JSON.stringify(value)} is not supported (only ${JSON.stringify(spec.unsupported[key])})`);
    } else if (!key.startsWith('_') && !METADATA.has(key)) unknown.push(key);
  }
  if (unknown.length) {
    const known = [...Object.keys(spec.defaults), ...Object.keys(spec.unsupported ?? {})].sort();
    problems.push(`unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')} (known: ${known.join(', ')})`);
  }
  if (problems.length) throw new Error(`${name} config:\n  ${problems.join('\n  ')}`);
  return out as T;
}

export const readJson = (file: string): unknown => JSON.parse(fs.readFileSync(file, 'utf8'));

// A per-block setting given once for all blocks or as a list (diffusers' int-or-tuple config values).
export function perBlock<T>(v: T | T[], n: number, key: string): T[] {
  if (!Array.isArray(v)) return Array.from({ length: n }, () => v);
  if (v.length !== n) throw new Error(`${key} has ${v.length} entries for ${n} blocks`);
  return v;
}
