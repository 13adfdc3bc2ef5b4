// A real `mumu serve` process on an ephemeral port (the CLI as a user runs it), and small HTTP helpers for it.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { BIN } from '../cli/helpers.ts';

export interface Served {
  url: string;
  proc: ChildProcess;
  stderr: () => string;
  stdout: () => string;
  // the generation process (the server's only child)
  workerPid(): number | undefined;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

// `group`: the server gets a process group of its own, so stop() can signal the whole group, as Ctrl+C in a terminal does.
export function serve(
  args: string[],
  o: { env?: Record<string, string>; cwd?: string; group?: boolean } = {},
): Promise<Served> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--single-threaded-gc', BIN, 'serve', '--port', '0', ...args], {
      cwd: o.cwd,
      env: { ...process.env, NO_COLOR: '1', MUMU_NUM_THREADS: '1', ...o.env },
      detached: o.group ?? false,
    });
    let stdout = '',
      stderr = '';
    const exited = new Promise<number | null>((res) => proc.on('exit', (code) => res(code)));
    const timer = setTimeout(() => reject(new Error(`mumu serve did not start in 60 s:\n${stderr}`)), 60_000);
    proc.stderr.on('data', (d) => (stderr += d));
    proc.stdout.on('data', (d) => {
      stdout += d;
      const m = /^mumu serve: (http:\/\/\S+) /m.exec(stdout);
      if (!m) return;
      clearTimeout(timer);
      resolve({
        url: m[1]!,
        proc,
        stderr: () => stderr,
        stdout: () => stdout,
        workerPid() {
          const f = `/proc/${proc.pid}/task/${proc.pid}/children`;
          const pids = existsSync(f) ? readFileSync(f, 'utf8').trim().split(/\s+/).map(Number) : [];
          return pids.find(
            (pid) =>
              pid > 0 &&
              existsSync(`/proc/${pid}/cmdline`) &&
              readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('serve/worker.ts'),
          );
        },
        async stop(signal = 'SIGTERM') {
          if (proc.exitCode === null && proc.signalCode === null) {
            if (o.group) process.kill(-proc.pid!, signal);
            else proc.kill(signal);
          }
          return exited;
        },
      });
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`mumu serve exited (${code}) before starting:\n${stderr}`));
    });
  });
}

export async function call(
  url: string,
  init: RequestInit & { json?: unknown } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const { json, ...rest } = init;
  const r = await fetch(
    url,
    json === undefined
      ? rest
      : {
          ...rest,
          method: rest.method ?? 'POST',
          headers: { 'content-type': 'application/json', ...rest.headers },
          body: JSON.stringify(json),
        },
  );
  const text = await r.text();
  let body: any = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: r.status, body, headers: r.headers };
}

export interface SseEvent {
  event: string;
  data: any;
}

// Reads a server-sent event stream to its end (or until `until` says stop), calling `on` for each event.
export async function events(
  url: string,
  o: { headers?: Record<string, string>; until?: (e: SseEvent) => boolean; on?: (e: SseEvent) => void } = {},
): Promise<SseEvent[]> {
  const ac = new AbortController();
  const r = await fetch(url, { headers: o.headers, signal: ac.signal });
  if (r.status !== 200) throw new Error(`events: ${r.status} ${await r.text()}`);
  if (!r.headers.get('content-type')?.startsWith('text/event-stream'))
    throw new Error(`events: content-type ${r.headers.get('content-type')}`);
  const out: SseEvent[] = [];
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (!event || data === undefined) continue; // comments (keep-alives)
        const e = { event, data: JSON.parse(data) };
        out.push(e);
        o.on?.(e);
        if (o.until?.(e)) {
          ac.abort();
          return out;
        }
      }
    }
  } catch (e) {
    if (!ac.signal.aborted) throw e;
  }
  return out;
}

// Polls a job until it is in one of `states`.
export async function waitFor(
  base: string,
  id: string,
  states: string[],
  o: { headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<any> {
  const end = Date.now() + (o.timeoutMs ?? 60_000);
  for (;;) {
    const r = await call(`${base}/api/generations/${id}`, { headers: o.headers });
    if (states.includes(r.body?.state)) return r.body;
    if (Date.now() > end)
      throw new Error(`job ${id} is ${r.body?.state}, not ${states.join('/')}, after ${o.timeoutMs ?? 60_000} ms`);
    await new Promise((res) => setTimeout(res, 50));
  }
}
