// `mumu serve`: the HTTP API and the web page (src/serve).
import { basename, resolve } from 'node:path';
import { UsageError, intFlag, floatFlag, parseCommand } from './args.ts';
import { resolveModel } from './generate.ts';

export const SERVE_HELP = `Usage: mumu serve [--model DIR] [--host 127.0.0.1] [--port 7860] [--token T] [--queue 32] [--out DIR]

Serves the model over HTTP: a web page at / (prompts with images dropped in place, progress, a gallery) and a JSON
API under /api (described by /api/openapi.json). The model is loaded once, in a generation process of its own;
jobs run one at a time from a bounded queue.

Options:
  --model DIR         model folder (default models/emoji-default)
  --host ADDR         address to bind (default 127.0.0.1); any other address needs --token
  --port N            port (default 7860; 0 picks a free one)
  --token T           every API call needs this token (Authorization: Bearer T; the page asks for it once).
                      MUMU_TOKEN=T in the environment does the same without showing T in the process list
  --cors ORIGIN       let pages from ORIGIN (e.g. http://localhost:3000) call the API (default: no CORS)
  --queue N           jobs that may wait behind the running one (default 32); more are answered 429
  --out DIR           where jobs, their references and images are kept (default ./mumu-serve)
  --keep N            finished jobs kept on disk, newest first (default 1000)
  --keep-days D       and none older than D days (default 30)
  --max-upload-mb M   largest reference image accepted, in MiB (default 16); pixels are bounded as in generate
  --device NAME       cpu (default) or cuda
  -h, --help          this help
`;

const OPTIONS = {
  model: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  token: { type: 'string' },
  cors: { type: 'string' },
  queue: { type: 'string' },
  out: { type: 'string' },
  keep: { type: 'string' },
  'keep-days': { type: 'string' },
  'max-upload-mb': { type: 'string' },
  device: { type: 'string' },
} as const;

export async function runServe(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, { command: 'serve', help: SERVE_HELP, options: OPTIONS });
  if (!parsed) return 0;
  const v = parsed.values;
  const host = v.host ?? '127.0.0.1';
  const port = intFlag('port', v.port, 0, 65535) ?? 7860;
  const queue = intFlag('queue', v.queue, 0, 100_000) ?? 32;
  const keep = intFlag('keep', v.keep, 1) ?? 1000;
  const keepDays = floatFlag('keep-days', v['keep-days'], 0) ?? 30;
  const uploadMb = floatFlag('max-upload-mb', v['max-upload-mb'], 0.001, 1024) ?? 16;
  const token = v.token ?? process.env.MUMU_TOKEN ?? undefined;
  const device = v.device ?? 'cpu';
  if (device !== 'cpu' && !device.startsWith('cuda'))
    throw new UsageError(`--device must be cpu or cuda, got '${device}'`, 'serve');
  if (token !== undefined && token.length < 8) throw new UsageError('--token must be at least 8 characters', 'serve');
  if (v.cors !== undefined && !/^https?:\/\/[^/\s]+$/.test(v.cors))
    throw new UsageError(`--cors must be an origin such as http://localhost:3000, got '${v.cors}'`, 'serve');
  const { startServer } = await import('../serve/server.ts');
  const { isLoopback } = await import('../serve/guards.ts');
  if (!isLoopback(host) && !token) {
    throw new UsageError(
      `--host ${host} would let other machines in: give a --token (or MUMU_TOKEN) too, or bind 127.0.0.1`,
      'serve',
    );
  }
  const modelDir = resolveModel(v.model);
  const out = resolve(v.out ?? 'mumu-serve');
  process.stderr.write(`mumu serve: loading ${modelDir}\n`);
  const server = await startServer({
    modelDir,
    modelName: basename(modelDir),
    device,
    host,
    port,
    token,
    cors: v.cors,
    queue,
    out,
    retention: { keep, keepDays },
    uploadBytes: Math.round(uploadMb * 2 ** 20),
  });
  if (server.recovered)
    process.stderr.write(
      `mumu serve: ${server.recovered} job(s) in flight when the server last stopped are marked failed\n`,
    );
  // the start-up line (tests and scripts read the URL from it)
  process.stdout.write(
    `mumu serve: ${server.url} (model ${basename(modelDir)} loaded in ${server.loadSeconds.toFixed(1)} s; ` +
      `jobs in ${out}, the last ${keep} kept up to ${keepDays} days; queue ${queue}${token ? '; token required' : ''})\n`,
  );
  await new Promise<void>((done) => {
    const stop = (sig: string) => {
      process.stderr.write(`mumu serve: ${sig}, stopping\n`);
      server.close().then(done, done);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}
