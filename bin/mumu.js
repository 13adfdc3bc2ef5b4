#!/usr/bin/env node
// The `mumu` command: registers tsx so the TypeScript sources run as they are, then hands over to src/cli/main.ts.
// Works as `node bin/mumu.js` and through npm's bin link (Node resolves the link to this file, so the relative URL holds).
import { register } from 'tsx/esm/api';

register();
const { main } = await import(new URL('../src/cli/main.ts', import.meta.url).href);
process.exitCode = await main(process.argv.slice(2));
