// The entry point of the GPU bundle (scripts/gpu/pack.sh): `mumu train` alone, bundled by esbuild into one file.
// src/cli/main.ts loads its subcommands by computed URL, which a bundler cannot follow, so this calls runTrain
// directly and reports errors the way main() does: one line (exit 2 for a bad command line, 1 otherwise).
import { runTrain } from '../../src/cli/train.ts';
import { UsageError } from '../../src/cli/args.ts';

const argv = process.argv.slice(2);
const debug = argv.includes('--debug');
try {
  process.exitCode = await runTrain(argv.filter((a) => a !== '--debug'));
} catch (e) {
  const err = e instanceof Error ? e : new Error(String(e));
  const usage = err instanceof UsageError;
  process.stderr.write(`mumu train: ${err.message.split('\n')[0]}${usage ? ' (see mumu train --help)' : ''}\n`);
  if (debug) process.stderr.write((err.stack ?? err.message) + '\n');
  process.exitCode = usage ? 2 : 1;
}
