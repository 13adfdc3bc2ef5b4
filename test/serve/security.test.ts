// `mumu serve --token`: every API call needs the token (Bearer, or the page's HttpOnly SameSite=Strict cookie);
// no CORS but for --cors ORIGIN; cross-origin writes and foreign Host headers refused; the CLI's refusals.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve, call, events, waitFor, type Served } from './helpers.ts';
import { mumu } from '../cli/helpers.ts';
import { makeTinyModel } from '../pipeline/tiny-model.ts';

const TOKEN = 'correct horse battery';
const ORIGIN = 'http://localhost:3000';
let model = '',
  s: Served,
  api = '';
before(async () => {
  model = await makeTinyModel();
  s = await serve(['--model', model, '--out', mkdtempSync(join(tmpdir(), 'mumu-serve-')), '--cors', ORIGIN], {
    env: { MUMU_TOKEN: TOKEN },
  });
  api = `${s.url}/api`;
});
after(async () => {
  await s.stop();
});

const bearer = { authorization: `Bearer ${TOKEN}` };

// node's fetch will not send a Host header of our choosing; http.request does
function rawGet(path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const u = new URL(s.url);
  return new Promise((res, rej) => {
    const req = request({ host: u.hostname, port: u.port, path, headers }, (r) => {
      let body = '';
      r.on('data', (d) => (body += d));
      r.on('end', () => res({ status: r.statusCode!, body }));
    });
    req.on('error', rej);
    req.end();
  });
}

test('the token: 401 without it or with a wrong one, on every API route; Bearer works; the page itself is public', async () => {
  assert.match(s.stdout(), /; token required\)$/m);
  for (const [method, path] of [
    ['GET', '/health'],
    ['GET', '/model'],
    ['GET', '/openapi.json'],
    ['GET', '/generations'],
    ['POST', '/generations'],
    ['GET', '/generations/0000000aa-000000'],
    ['DELETE', '/generations/0000000aa-000000'],
    ['GET', '/generations/0000000aa-000000/events'],
  ] as const) {
    for (const headers of [
      {},
      { authorization: 'Bearer wrong token' },
      { authorization: TOKEN },
      { cookie: 'mumu_token=wrong' },
    ] as Record<string, string>[]) {
      const r = await call(`${api}${path}`, { method, headers });
      assert.equal(r.status, 401, `${method} ${path} ${JSON.stringify(headers)}`);
      assert.equal(r.headers.get('www-authenticate'), 'Bearer');
      assert.deepEqual(r.body, {
        error: 'this server needs its token: send Authorization: Bearer TOKEN, or sign in on the page',
      });
    }
  }
  assert.equal((await call(`${api}/health`, { headers: bearer })).status, 200);
  assert.equal((await fetch(`${s.url}/`)).status, 200);
  assert.equal((await fetch(`${s.url}/app.js`)).status, 200);
  const doc = (await call(`${api}/openapi.json`, { headers: bearer })).body;
  assert.deepEqual(doc.security, [{ bearer: [] }, { cookie: [] }]);
});

test('the session cookie: HttpOnly, SameSite=Strict; it opens the API, the event stream and the images', async () => {
  const wrong = await call(`${api}/session`, { json: { token: 'nope' } });
  assert.deepEqual([wrong.status, wrong.body, wrong.headers.get('set-cookie')], [401, { error: 'wrong token' }, null]);
  const ok = await call(`${api}/session`, { json: { token: TOKEN } });
  assert.equal(ok.status, 204);
  const setCookie = ok.headers.get('set-cookie')!;
  assert.match(setCookie, /^mumu_token=[^;]+; Path=\/; HttpOnly; SameSite=Strict$/);
  const cookie = { cookie: setCookie.split(';')[0]! };
  const job = await call(`${api}/generations`, {
    headers: cookie,
    json: { prompt: [{ text: 'a dog' }], steps: 2, seed: 1 },
  });
  assert.equal(job.status, 202, JSON.stringify(job.body));
  const evs = await events(`${s.url}${job.body.events}`, { headers: cookie });
  assert.equal(evs[evs.length - 1]!.data.state, 'done');
  const img = await fetch(`${s.url}${evs[evs.length - 1]!.data.images[0]}`, { headers: cookie });
  assert.deepEqual([img.status, img.headers.get('content-type')], [200, 'image/png']);
  assert.equal((await fetch(`${s.url}${evs[evs.length - 1]!.data.images[0]}`)).status, 401);
});

test('CORS only for the --cors origin; writes from any other origin refused; foreign Host headers refused', async () => {
  const pre = await fetch(`${api}/generations`, {
    method: 'OPTIONS',
    headers: {
      origin: ORIGIN,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization,content-type',
    },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), ORIGIN);
  assert.match(pre.headers.get('access-control-allow-methods')!, /POST/);
  const get = await fetch(`${api}/health`, { headers: { ...bearer, origin: ORIGIN } });
  assert.equal(get.headers.get('access-control-allow-origin'), ORIGIN);
  const other = await fetch(`${api}/health`, { headers: { ...bearer, origin: 'http://evil.example' } });
  assert.equal(other.headers.get('access-control-allow-origin'), null);
  const post = await call(`${api}/generations`, {
    headers: { ...bearer, origin: 'http://evil.example' },
    json: { prompt: [{ text: 'a dog' }], steps: 1 },
  });
  assert.deepEqual(
    [post.status, post.body],
    [
      403,
      {
        error:
          'cross-origin request from http://evil.example refused (start the server with --cors http://evil.example to allow one)',
      },
    ],
  );
  const allowed = await call(`${api}/generations`, {
    headers: { ...bearer, origin: ORIGIN },
    json: { prompt: [{ text: 'a dog' }], steps: 1 },
  });
  assert.equal(allowed.status, 202);
  await waitFor(s.url, allowed.body.id, ['done'], { headers: bearer });
  const port = new URL(s.url).port;
  assert.equal((await rawGet('/api/health', { ...bearer, host: `localhost:${port}` })).status, 200);
  const rebound = await rawGet('/', { host: `attacker.example:${port}` });
  assert.equal(rebound.status, 403);
  assert.deepEqual(JSON.parse(rebound.body), {
    error: `Host 'attacker.example:${port}' refused: this server answers to 127.0.0.1 and localhost only`,
  });
});

test('the CLI refuses an open bind without a token, bad flags and a missing model, in one line', async () => {
  const open = await mumu(['serve', '--model', model, '--host', '0.0.0.0']);
  assert.deepEqual(
    [open.code, open.stderr.trim()],
    [
      2,
      'mumu serve: --host 0.0.0.0 would let other machines in: give a --token (or MUMU_TOKEN) too, or bind 127.0.0.1 (see mumu serve --help)',
    ],
  );
  const flags: [string[], string][] = [
    [['--port', '70000'], 'mumu serve: --port must be between 0 and 65535, got 70000 (see mumu serve --help)'],
    [['--queue', 'x'], "mumu serve: --queue must be a whole number, got 'x' (see mumu serve --help)"],
    [['--token', 'short'], 'mumu serve: --token must be at least 8 characters (see mumu serve --help)'],
    [
      ['--cors', '*'],
      "mumu serve: --cors must be an origin such as http://localhost:3000, got '*' (see mumu serve --help)",
    ],
    [['--model', '/nonexistent'], 'mumu: --model /nonexistent: no such folder'],
    [['extra'], "mumu serve: Unexpected argument 'extra' (see mumu serve --help)"],
  ];
  for (const [args, line] of flags) {
    const r = await mumu(['serve', ...(args[0] === '--model' ? [] : ['--model', model]), ...args]);
    assert.equal(r.stderr.trim(), line);
    assert.ok(r.code === 1 || r.code === 2);
  }
  // failures after the start: a model that cannot load, a port in use; neither leaves a process behind (mumu returns)
  const broken = mkdtempSync(join(tmpdir(), 'mumu-broken-'));
  writeFileSync(join(broken, 'model_index.json'), '{}');
  const bad = await mumu(['serve', '--model', broken, '--port', '0']);
  assert.deepEqual(
    [bad.code, bad.stderr.trim().split('\n').pop()],
    [1, `mumu: ${broken} has no tokenizer/tokenizer.json`],
  );
  const port = new URL(s.url).port;
  const busy = await mumu(['serve', '--model', model, '--port', port]);
  assert.deepEqual(
    [busy.code, busy.stderr.trim().split('\n').pop()],
    [1, `mumu: port ${port} on 127.0.0.1 is in use (another mumu serve?): pick another with --port`],
  );
  const help = await mumu(['serve', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: mumu serve /);
  assert.match((await mumu(['--help'])).stdout, /^ {2}serve {6}an HTTP API and a web page/m);
});
