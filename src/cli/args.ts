// A command's arguments: one parser for every `mumu <command>` (parseCommand), strict number flags, and the error
// the CLI reports for a bad command line. A UsageError is the user's command line (exit 2); anything else that
// reaches main() is reported by its message (exit 1), with the stack only under --debug.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

// Strict number parsing for flags: "12" yes, "12abc", "", "1e3" (for integers) no.
export function intFlag(
  name: string,
  v: string | undefined,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v.trim())) throw new UsageError(`--${name} must be a whole number, got '${v}'`);
  const n = Number(v);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${v}`);
  return n;
}

export function floatFlag(name: string, v: string | undefined, min = -Infinity, max = Infinity): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got '${v}'`);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${v}`);
  return n;
}

type Options = NonNullable<ParseArgsConfig['options']>;
const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const;

export interface CommandSpec<O extends Options> {
  command: string; // for messages: "mumu <command>: ..."
  help: string; // printed for -h / --help
  options: O;
  positionals?: boolean; // default false: every argument is an option
}

// node's parseArgs reads `--steps -1` as two options (and says "ambiguous"); a value that is a negative number is
// joined to its option (`--steps=-1`), so the flag's own range check answers.
function joinNegativeValues(argv: string[], options: Options): string[] {
  const byShort = new Map(
    Object.entries(options)
      .filter(([, o]) => o.short)
      .map(([name, o]) => [o.short!, name]),
  );
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const name = a.startsWith('--') ? a.slice(2) : /^-[^-]$/.test(a) ? byShort.get(a.slice(1)) : undefined;
    const next = argv[i + 1];
    if (name && options[name]?.type === 'string' && next !== undefined && /^-(\d|\.\d)/.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

// Parses a command's arguments strictly. Returns null after printing the help (the command then exits 0); a bad
// command line is a UsageError with node's first sentence (the rest is a hint about '--' that is noise here).
export function parseCommand<const O extends Options>(argv: string[], spec: CommandSpec<O>) {
  type Config = { args: string[]; options: O & typeof HELP_OPTION; allowPositionals: boolean; strict: true };
  const options = { ...spec.options, ...HELP_OPTION };
  let parsed;
  try {
    parsed = parseArgs<Config>({
      args: joinNegativeValues(argv, options),
      options,
      allowPositionals: spec.positionals ?? false,
      strict: true,
    });
  } catch (e) {
    throw new UsageError((e as Error).message.split('. ')[0]!.replace(/\.$/, ''), spec.command);
  }
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(spec.help);
    return null;
  }
  return parsed;
}
