// Runs the real CLI process, on one libtorch thread: the tiny test models gain nothing from threads, and the test
// processes share the cores.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/mumu.js', import.meta.url));

export function mumu(
  args: string[],
  o: { cwd?: string; bin?: string[] } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const p = spawn(o.bin?.[0] ?? process.execPath, [...(o.bin?.slice(1) ?? [BIN]), ...args], {
      cwd: o.cwd,
      env: { ...process.env, NO_COLOR: '1', MUMU_NUM_THREADS: '1' },
    });
    let stdout = '',
      stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', rej);
    p.on('close', (code) => res({ code: code ?? -1, stdout, stderr }));
  });
}
