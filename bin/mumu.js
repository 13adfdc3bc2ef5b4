#!/usr/bin/env -S node --single-threaded-gc
// The `mumu` command: registers tsx so the TypeScript sources run as they are, then hands over to src/cli/main.ts.
// Works as `node bin/mumu.js` and through npm's bin link (Node resolves the link to this file, so the relative URL holds).
import { fileURLToPath } from 'node:url';

// A checkout that was never set up has no node_modules: say what to run instead of a module-resolution stack.
let register;
try {
  ({ register } = await import('tsx/esm/api'));
} catch (e) {
  if (e?.code !== 'ERR_MODULE_NOT_FOUND') throw e;
  const root = fileURLToPath(new URL('..', import.meta.url));
  process.stderr.write(`mumu: the dependencies are not installed: run \`npm run setup\` in ${root}\n`);
  process.exit(1);
}
// our tsconfig, not whatever tsconfig.json sits in the user's working folder (it could change class-field semantics)
register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
const { main } = await import(new URL('../src/cli/main.ts', import.meta.url).href);
process.exitCode = await main(process.argv.slice(2));
