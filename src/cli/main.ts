// The `mumu` command line. Subcommands live in their own modules and are imported only when used, so the CLI
// starts fast and works before every subcommand exists (bootstrap, train and eval land from other issues).
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UsageError } from './args.ts';

export const HELP = `mumu: image generation from multimodal prompts (text interleaved with images), after MUMU (arXiv 2406.18790)

Usage: mumu <command> [options]

Commands:
  generate   make images from a prompt such as "a <img:dog.png> dog and a <img:rocket.png> rocket"
  info       print the generation settings stored in a PNG that mumu made
  serve      an HTTP API and a web page (images dropped into the prompt, progress, a gallery)
  bootstrap  build a multimodal-prompt dataset from EmojiWorld or captioned photos
  train      train a model stage from a config
  eval       evaluate a model

Options:
  -h, --help     this help; "mumu <command> --help" for a command's options
  --version      print the version
  --debug        on errors, print the stack trace too

Example:
  mumu generate "a <img:dog.png> dog on the moon" -o moon.png --n 4 --seed 1
`;

// Subcommands provided by other modules as `src/cli/<file>.ts` exporting `<fn>(argv: string[])`.
const EXTERNAL: Record<string, { file: string; fn: string }> = {
  bootstrap: { file: 'bootstrap.ts', fn: 'runBootstrap' },
  train: { file: 'train.ts', fn: 'runTrain' },
  eval: { file: 'eval.ts', fn: 'runEval' },
};

function version(): string {
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

async function dispatch(command: string, argv: string[]): Promise<number | void> {
  switch (command) {
    case 'generate':
      return (await import('./generate.ts')).runGenerate(argv);
    case 'info':
      return (await import('./generate.ts')).runInfo(argv);
    case 'serve':
      return (await import('./serve.ts')).runServe(argv);
  }
  const ext = EXTERNAL[command];
  if (!ext)
    throw new UsageError(
      `unknown command '${command}' (commands: generate, info, serve, ${Object.keys(EXTERNAL).join(', ')})`,
      '',
    );
  const url = new URL(`./${ext.file}`, import.meta.url);
  if (!existsSync(fileURLToPath(url)))
    throw new Error(`'mumu ${command}' is not part of this build yet (src/cli/${ext.file} is missing)`);
  const mod = (await import(url.href)) as Record<string, unknown>;
  const fn = mod[ext.fn];
  if (typeof fn !== 'function') throw new Error(`src/cli/${ext.file} does not export ${ext.fn}(argv)`);
  return (await (fn as (a: string[]) => Promise<number | void>)(argv)) ?? 0;
}

// Returns the exit code. Never throws: every error becomes one line on stderr (the stack only with --debug).
export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  const args = argv.filter((a) => a !== '--debug');
  const command = args[0];
  try {
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
      if (command === 'help' && args[1]) return (await dispatch(args[1], ['--help'])) ?? 0;
      process.stdout.write(HELP);
      return command === undefined ? 2 : 0;
    }
    if (command === '--version' || command === '-v') {
      process.stdout.write(`mumu ${version()}\n`);
      return 0;
    }
    if (command.startsWith('-')) throw new UsageError(`expected a command before '${command}'`, '');
    return (await dispatch(command, args.slice(1))) ?? 0;
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    const usage = err instanceof UsageError;
    const lines = err.message.split('\n');
    // a header that ends in ':' (a config's name over its list of problems) is printed with the first problem
    if (lines.length > 1 && lines[0]!.endsWith(':')) lines.splice(0, 2, `${lines[0]} ${lines[1]!.trim()}`);
    const where = usage ? (err.command ?? command ?? '') : '';
    let line = `mumu${where ? ` ${where}` : ''}: ${lines[0]}`;
    if (lines.length > 1 && !debug) line += ` (+${lines.length - 1} more with --debug)`;
    if (usage) line += ` (see mumu ${where ? `${where} ` : ''}--help)`;
    process.stderr.write(line + '\n');
    if (debug) process.stderr.write((err.stack ?? err.message) + '\n');
    return err instanceof UsageError ? 2 : 1;
  }
}
