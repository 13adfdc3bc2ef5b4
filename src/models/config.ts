// Typed configs read verbatim from diffusers / transformers `config.json` files, through the one strict reader
// (src/config.ts): implemented keys with their upstream defaults, keys accepted at one value only, and metadata
// (`_class_name`, `architectures`, ...).
import { readConfig, readJson, type ConfigSpec } from '../config.ts';

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

// A model config (config.json): src/config.ts's reader with the libraries' metadata keys ignored and null accepted
// anywhere (transformers writes null for "not set").
export function parseConfig<T extends object>(name: string, raw: unknown, spec: ConfigSpec<T>): T {
  return readConfig(`${name} config`, raw, { ignored: METADATA, nullable: true, ...spec });
}

export { readJson };

// A per-block setting given once for all blocks or as a list (diffusers' int-or-tuple config values).
export function perBlock<T>(v: T | T[], n: number, key: string): T[] {
  if (!Array.isArray(v)) return Array.from({ length: n }, () => v);
  if (v.length !== n) throw new Error(`${key} has ${v.length} entries for ${n} blocks`);
  return v;
}
