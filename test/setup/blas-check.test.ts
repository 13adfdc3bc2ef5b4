// The set-up's BLAS check (scripts/blas-check.sh) reads ldd's whole output before searching it. The old
// `ldd | grep -q` under pipefail failed whenever grep found its match before ldd finished writing: the fake ldd below
// makes that happen every time (its first line names OpenBLAS, the rest comes later), and it made the first run
// after an install warn that OpenBLAS was missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../scripts/blas-check.sh', import.meta.url));

// A fake `ldd` on PATH that prints `first`, pauses, then prints 300 more library lines.
function fakeLdd(first: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'mumu-ldd-'));
  const body = `#!/usr/bin/env bash\necho "${first}"\nsleep 0.3\nfor i in $(seq 300); do echo "\tlibx$i.so => /lib/libx$i.so (0x0)"; done\n`;
  writeFileSync(join(dir, 'ldd'), body);
  chmodSync(join(dir, 'ldd'), 0o755);
  return dir;
}
const run = (cmd: string[], pathDir: string) =>
  spawnSync(cmd[0]!, cmd.slice(1), {
    env: { ...process.env, PATH: `${pathDir}:${process.env.PATH}` },
    encoding: 'utf8',
  });

test('OpenBLAS found early in a long ldd output: no warning (the old pipe said it was missing)', () => {
  const dir = fakeLdd('\tlibopenblas.so.0 => /lib/x86_64-linux-gnu/libopenblas.so.0 (0x0)');
  const old = run(['bash', '-c', "set -o pipefail; ldd addon.node | grep -qiE 'openblas|mkl'"], dir);
  assert.notEqual(old.status, 0, 'the old check fails on this output (ldd killed by SIGPIPE)');
  const r = run(['bash', SCRIPT, 'addon.node'], dir);
  assert.equal(r.status, 0);
  assert.equal(r.stderr, '');
});

test('the reference BLAS: the warning, and still exit 0', () => {
  const dir = fakeLdd('\tlibblas.so.3 => /lib/x86_64-linux-gnu/blas/libblas.so.3 (0x0)');
  const r = run(['bash', SCRIPT, 'addon.node'], dir);
  assert.equal(r.status, 0);
  assert.match(r.stderr, /WARNING: libtorch is NOT using OpenBLAS\/MKL/);
});
