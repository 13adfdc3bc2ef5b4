// Strict config reading: the one reader behind every config mumu reads (model configs as diffusers / transformers
// write them, scheduler_config.json, processor_config.json, the training stage configs). Every key is one mumu
// implements (with its default), one accepted at a single value only (a feature mumu lacks: any other value is an
// error, not a silent mismatch), one other libraries write that means nothing here (`ignored`), or `_`-prefixed
// metadata. Anything else is refused with the known keys listed, so a typo fails at load time instead of running
// with a default. The bottom layer: it imports nothing from mumu, so every layer may use it.
import fs from 'node:fs';

export type JsonKind = 'null' | 'array' | 'object' | 'number' | 'string' | 'boolean';
export const kindOf = (v: unknown): JsonKind =>
  v === null ? 'null' : Array.isArray(v) ? 'array' : (typeof v as JsonKind);
const isObject = (v: unknown): v is Record<string, unknown> => kindOf(v) === 'object';
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

// A number in a range (the rule checks the kind itself), or one of a list of values.
export interface KeyRule {
  min?: number;
  max?: number;
  int?: boolean;
  choices?: readonly unknown[];
}

export interface ConfigSpec<T> {
  defaults: T; // every implemented key with its default
  unsupported?: Record<string, unknown>; // key -> the only accepted value
  ignored?: ReadonlySet<string>; // keys other libraries write that mean nothing here
  required?: readonly (keyof T)[]; // keys that must be given (their default is only a placeholder)
  flexible?: readonly (keyof T)[]; // keys whose value may be any JSON kind; others must match the default's kind
  nullable?: boolean; // any key may be null (transformers writes null for "not set"); else only where the default is
  rules?: { [K in keyof T]?: KeyRule };
  // keys holding an object read with its own spec (a null default: the section is off unless given)
  sections?: { [K in keyof T]?: ConfigSpec<any> };
}

// The reason a value breaks a rule, or null.
export function checkRule(key: string, v: unknown, r: KeyRule): string | null {
  if (r.choices && !r.choices.includes(v))
    return `${key} = ${JSON.stringify(v).replaceAll('"', "'")} is not one of ${r.choices.join(', ')}`;
  if (r.min === undefined && r.max === undefined && !r.int) return null;
  const ok =
    typeof v === 'number' &&
    Number.isFinite(v) &&
    !(v < (r.min ?? -Infinity)) &&
    !(v > (r.max ?? Infinity)) &&
    (!r.int || Number.isInteger(v));
  if (ok) return null;
  const range =
    r.min !== undefined && r.max !== undefined
      ? ` in [${r.min}, ${r.max}]`
      : r.min !== undefined
        ? ` >= ${r.min}`
        : r.max !== undefined
          ? ` <= ${r.max}`
          : '';
  return `${key} must be a number${range}${r.int ? ' (an integer)' : ''}, got ${JSON.stringify(v)}`;
}

// Every problem of `raw` against `spec`, keys prefixed with `prefix`; fills `out` with the defaults and the values.
function collect<T>(
  raw: Record<string, unknown>,
  spec: ConfigSpec<T>,
  prefix: string,
  out: Record<string, unknown>,
  problems: string[],
): void {
  const defaults = spec.defaults as Record<string, unknown>;
  Object.assign(out, defaults);
  const unknown: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const name = prefix + key;
    if (key in defaults) {
      const d = defaults[key];
      const section = spec.sections?.[key as keyof T];
      const rule = spec.rules?.[key as keyof T];
      if (section && isObject(value)) {
        const sub: Record<string, unknown> = {};
        collect(value, section, `${name}.`, sub, problems);
        out[key] = sub;
        continue;
      }
      out[key] = value;
      const nullOk = value === null && (d === null || spec.nullable || spec.flexible?.includes(key as keyof T));
      if (nullOk || spec.flexible?.includes(key as keyof T)) continue;
      if (rule) {
        const why = checkRule(name, value, rule);
        if (why) problems.push(why);
        if (why || rule.choices || rule.min !== undefined || rule.max !== undefined || rule.int) continue;
      }
      if (section && d === null) problems.push(`${name} must be null or an object, got ${JSON.stringify(value)}`);
      else if (d !== null && kindOf(d) !== kindOf(value))
        problems.push(`${name} must be ${kindOf(d)}, got ${JSON.stringify(value)}`);
    } else if (spec.unsupported && key in spec.unsupported) {
      const only = spec.unsupported[key];
      // null for a feature that is only accepted off (false) says the same thing
      if (!same(value, only) && !(only === false && value === null))
        problems.push(`${name} = ${JSON.stringify(value)} is not supported (only ${JSON.stringify(only)})`);
    } else if (!key.startsWith('_') && !spec.ignored?.has(key)) unknown.push(key);
  }
  for (const key of spec.required ?? []) if (!(key in raw)) problems.push(`${prefix}${String(key)} is required`);
  if (unknown.length) {
    const known = [...Object.keys(defaults), ...Object.keys(spec.unsupported ?? {})].sort();
    problems.push(
      `${prefix ? `${prefix.slice(0, -1)}: ` : ''}unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')} (known: ${known.join(', ')})`,
    );
  }
}

// Reads `raw` against `spec`: the defaults with the given values over them. Throws one error naming every problem,
// `where:` then one problem per indented line (the CLI prints the first with the header).
export function readConfig<T extends object>(where: string, raw: unknown, spec: ConfigSpec<T>): T {
  if (!isObject(raw)) throw new Error(`${where}: expected a JSON object, got ${kindOf(raw)}`);
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  collect(raw, spec, '', out, problems);
  if (problems.length) throw new Error(`${where}:\n  ${problems.join('\n  ')}`);
  return out as T;
}

// A JSON file, with the file named when it cannot be read or parsed.
export function readJson(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message})`);
  }
}
