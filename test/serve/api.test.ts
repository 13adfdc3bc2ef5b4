// `mumu serve`'s API against real server processes on ephemeral ports, with the tiny random model: every endpoint,
// bad inputs, the queue's 429, cancel, and the pixels checked against MumuPipeline called directly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { serve, call, events, waitFor, type Served } from './helpers.ts';
import { makeTinyModel } from '../pipeline/tiny-model.ts';
import { solid, hugePngHeader } from '../prompt/fixtures.ts';
import { readText } from '../../src/image/index.ts';
import { MumuPipeline } from '../../src/pipeline.ts';

let model = '',
  out = '',
  s: Served,
  api = '';
let red: Buffer, blue: Buffer, green: Buffer;
before(async () => {
  model = await makeTinyModel();
  out = mkdtempSync(join(tmpdir(), 'mumu-serve-'));
  red = await solid(40, 20, [255, 0, 0]).png().toBuffer();
  blue = await solid(16, 16, [0, 0, 255]).jpeg().toBuffer();
  green = await solid(20, 30, [0, 255, 0]).webp({ lossless: true }).toBuffer();
  // 256 KiB per image: the request body may then be 4 x 256 KiB + 1 MiB = 2 MiB
  s = await serve(['--model', model, '--out', out, '--queue', '2', '--max-upload-mb', '0.25']);
  api = `${s.url}/api`;
});
after(async () => {
  assert.equal(await s.stop(), 0);
  assert.match(s.stderr(), /SIGTERM, stopping/);
});

const b64 = (b: Buffer) => b.toString('base64');
const post = (json: unknown) => call(`${api}/generations`, { json });
const rawPixels = async (png: Buffer | Uint8Array) => (await sharp(png).raw().toBuffer()).toString('base64');
const getBytes = async (url: string) => Buffer.from(await (await fetch(url)).arrayBuffer());

test('health, model, the OpenAPI file and the page', async () => {
  assert.match(
    s.stdout(),
    new RegExp(
      `^mumu serve: http://127\\.0\\.0\\.1:\\d+ \\(model ${model.split('/').pop()} loaded in [\\d.]+ s; jobs in ${out}, the last 1000 kept up to 30 days; queue 2\\)\\n$`,
    ),
  );
  const h = await call(`${api}/health`);
  assert.equal(h.status, 200);
  assert.deepEqual(
    { ...h.body, uptimeSeconds: 0 },
    {
      status: 'ok',
      model: model.split('/').pop(),
      running: null,
      queued: 0,
      queueCapacity: 2,
      jobs: 0,
      uptimeSeconds: 0,
    },
  );
  const m = await call(`${api}/model`);
  assert.deepEqual(m.body, {
    name: model.split('/').pop(),
    maxImages: 3,
    tokensPerImage: 4,
    referenceSize: 16,
    output: { width: 16, height: 16 },
    limits: {
      steps: 1000,
      n: 64,
      guidance: 100,
      seed: 2 ** 48,
      uploadBytes: 262144,
      uploadPixels: 100_000_000,
      bodyBytes: 4 * 262144 + 2 ** 20,
    },
    defaults: { steps: 50, guidance: 6, n: 1, sampler: 'ddim' },
  });
  const o = await call(`${api}/openapi.json`);
  assert.equal(o.body.openapi, '3.0.3');
  assert.deepEqual(Object.keys(o.body.paths).sort(), [
    '/api/generations',
    '/api/generations/{id}',
    '/api/generations/{id}/events',
    '/api/generations/{id}/images/{k}',
    '/api/generations/{id}/references/{name}',
    '/api/health',
    '/api/model',
    '/api/session',
  ]);
  const body = o.body.paths['/api/generations'].post.requestBody.content;
  assert.deepEqual(Object.keys(body).sort(), ['application/json', 'multipart/form-data']);
  assert.equal(body['application/json'].schema.properties.steps.maximum, 1000);
  assert.deepEqual(Object.keys(o.body.paths['/api/generations'].post.responses).sort(), [
    '202',
    '400',
    '401',
    '404',
    '413',
    '429',
  ]);
  const page = await fetch(`${s.url}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-security-policy')!, /default-src 'none'; script-src 'self'/);
  const html = await page.text();
  // attributes as the formatter may wrap them: one element with id prompt, class editor, contenteditable
  assert.match(html, /<div\s+id="prompt"\s+class="editor"\s+contenteditable="true"/);
  assert.doesNotMatch(html, /https?:\/\//, 'the page loads nothing from another host');
  const js = await fetch(`${s.url}/app.js`);
  assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.doesNotMatch(await js.text(), /\bimport\s*\(?["']https?:/);
});

test('JSON with base64 images: 202 at once, progress per step, then done; PNG metadata names the model and the references; same pixels as MumuPipeline', async () => {
  // a job ahead of it (cancelled once this one's event stream is open), so the stream sees the whole job
  const ahead = await post({ prompt: [{ text: 'a cat' }], steps: 1000, seed: 1 });
  assert.equal(ahead.status, 202);
  await events(`${s.url}${ahead.body.events}`, { until: (e) => e.event === 'progress' });
  const r = await post({
    prompt: [
      { text: 'a ' },
      { image: b64(red) },
      { text: ' dog and a ' },
      { image: `data:image/jpeg;base64,${b64(blue)}` },
      { text: ' cat' },
    ],
    negativePrompt: [{ text: 'blurry ' }, { image: b64(green) }],
    steps: 6,
    seed: 42,
    guidance: 4.5,
  });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal(r.headers.get('location'), `/api/generations/${r.body.id}`);
  assert.match(r.body.id, /^[0-9a-z]{9}-[0-9a-f]{6}$/);
  assert.ok(['queued', 'running'].includes(r.body.state));
  const id = r.body.id;
  let opened!: () => void;
  const open = new Promise<void>((res) => (opened = res));
  const stream = events(`${s.url}${r.body.events}`, { on: () => opened() });
  await open;
  assert.equal((await call(`${api}/generations/${ahead.body.id}`, { method: 'DELETE' })).status, 202);
  const evs = await stream;
  assert.equal(evs[0]!.event, 'state');
  assert.equal(evs[0]!.data.state, 'queued');
  assert.deepEqual(
    evs.filter((e) => e.event === 'progress').map((e) => e.data),
    [0, 1, 2, 3, 4, 5, 6].map((step) => ({ step, steps: 6 })),
  );
  assert.deepEqual(
    evs.filter((e) => e.event === 'state').map((e) => e.data.state),
    ['queued', 'running', 'done'],
  );
  const last = evs[evs.length - 1]!;
  assert.equal(last.event, 'state');
  assert.equal(last.data.state, 'done');
  const job = (await call(`${api}/generations/${id}`)).body;
  assert.deepEqual(job, last.data);
  const refs = (n: string) => `/api/generations/${id}/references/${n}`;
  assert.deepEqual(job.prompt, [
    { text: 'a ' },
    { image: refs('prompt-1.png') },
    { text: ' dog and a ' },
    { image: refs('prompt-2.png') },
    { text: ' cat' },
  ]);
  assert.deepEqual(job.negativePrompt, [{ text: 'blurry ' }, { image: refs('negative-1.png') }]);
  assert.deepEqual(job.settings, { steps: 6, guidance: 4.5, seed: 42, n: 1, sampler: 'ddim' });
  assert.deepEqual(job.images, [`/api/generations/${id}/images/1.png`]);
  assert.ok(job.seconds > 0 && Date.parse(job.finishedAt) >= Date.parse(job.startedAt));

  const res = await fetch(`${s.url}${job.images[0]}`);
  assert.equal(res.headers.get('content-type'), 'image/png');
  const png = Buffer.from(await res.arrayBuffer());
  const text = readText(png);
  const name = model.split('/').pop()!;
  assert.deepEqual(
    [
      text.prompt,
      text.negative_prompt,
      text.seed,
      text.steps,
      text.guidance_scale,
      text.model,
      text.software,
      text.mumu_job,
    ],
    [
      'a <img:prompt-1.png> dog and a <img:prompt-2.png> cat',
      'blurry <img:negative-1.png>',
      '42',
      '6',
      '4.5',
      name,
      'mumu',
      id,
    ],
  );
  assert.ok(!Object.values(text).some((v) => v.includes(model) || v.includes(out)), 'no server path in the metadata');
  assert.deepEqual(JSON.parse(text.references!), {
    'prompt-1.png': refs('prompt-1.png'),
    'prompt-2.png': refs('prompt-2.png'),
    'negative-1.png': refs('negative-1.png'),
  });
  assert.deepEqual(JSON.parse(text.mumu_segments!).negativePrompt, [
    { text: 'blurry ' },
    { reference: 'negative-1.png' },
  ]);

  // the stored references are the uploads' pixels, and remake the image exactly through the pipeline itself
  const [r1, r2, n1] = await Promise.all(
    ['prompt-1.png', 'prompt-2.png', 'negative-1.png'].map((n) => getBytes(`${s.url}${refs(n)}`)),
  );
  assert.equal(await rawPixels(r1!), await rawPixels(red));
  assert.equal(await rawPixels(n1!), await rawPixels(green));
  const pipe = await MumuPipeline.fromPretrained(model);
  const direct = await pipe.generate(['a ', { image: r1! }, ' dog and a ', { image: r2! }, ' cat'], {
    steps: 6,
    seed: 42,
    guidanceScale: 4.5,
    negativePrompt: ['blurry ', { image: n1! }],
  });
  assert.equal(
    (await sharp(png).raw().toBuffer()).toString('base64'),
    Buffer.from(direct.images[0]!.data).toString('base64'),
  );
});

test('multipart: the same request in a `request` field, images as file parts at two positions', async () => {
  const form = new FormData();
  form.set(
    'request',
    JSON.stringify({
      prompt: [{ text: 'a ' }, { upload: 'dog' }, { text: ' dog and a ' }, { upload: 'rocket' }, { text: ' rocket' }],
      steps: 3,
      seed: 7,
      n: 2,
    }),
  );
  form.set('dog', new Blob([new Uint8Array(red)]), '../../etc/evil name.png'); // the client's file name is never used
  form.set('rocket', new Blob([new Uint8Array(blue)]), 'rocket.jpg');
  const r = await call(`${api}/generations`, { method: 'POST', body: form });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const job = await waitFor(s.url, r.body.id, ['done', 'failed']);
  assert.equal(job.state, 'done', job.error);
  assert.deepEqual(
    job.prompt.map((p: any) => p.text ?? p.image.split('/').pop()),
    ['a ', 'prompt-1.png', ' dog and a ', 'prompt-2.png', ' rocket'],
  );
  assert.equal(job.images.length, 2);
  assert.deepEqual(readdirSync(join(out, 'jobs', job.id)).sort(), ['1.png', '2.png', 'job.json', 'refs']);
  assert.deepEqual(readdirSync(join(out, 'jobs', job.id, 'refs')).sort(), ['prompt-1.png', 'prompt-2.png']);
  const seeds = await Promise.all(job.images.map(async (u: string) => readText(await getBytes(`${s.url}${u}`)).seed));
  assert.deepEqual(seeds, ['7', '8']);
});

test('text segments are taken literally: no <img:...> tag is read, and the API reads no server file', async () => {
  const file = join(out, 'secret.png');
  await solid(8, 8, [1, 2, 3]).png().toFile(file);
  const r = await post({ prompt: [{ text: `a <img:${file}> dog` }], steps: 2, seed: 1 });
  assert.equal(r.status, 202);
  const job = await waitFor(s.url, r.body.id, ['done', 'failed']);
  assert.equal(job.state, 'done', job.error);
  assert.deepEqual(job.prompt, [{ text: `a <img:${file}> dog` }]);
  assert.ok(!existsSync(join(out, 'jobs', job.id, 'refs', 'prompt-1.png')));
  assert.equal(readText(await getBytes(`${s.url}${job.images[0]}`)).prompt, `a \\<img:${file}> dog`);
  const asImage = await post({ prompt: [{ image: file }] });
  assert.equal(asImage.status, 400);
  assert.match(asImage.body.error, /^prompt segment 1: image is not base64 data .*the API reads no server file\)$/);
});

test("bad requests: one line each, with the CLI's image checks and messages", async () => {
  const stored = readdirSync(join(out, 'jobs')).length;
  const cases: [unknown, number, string | RegExp][] = [
    [{}, 400, "body must have required property 'prompt'"],
    [{ prompt: [] }, 400, 'prompt: is empty: give some text and/or an image segment'],
    [{ prompt: [{ text: '   ' }] }, 400, 'prompt: is empty: give some text and/or an image segment'],
    [{ prompt: [{ text: 'a' }], steps: 0 }, 400, 'body/steps must be >= 1'],
    [{ prompt: [{ text: 'a' }], steps: 1001 }, 400, 'body/steps must be <= 1000'],
    [{ prompt: [{ text: 'a' }], n: 65 }, 400, 'body/n must be <= 64'],
    [{ prompt: [{ text: 'a' }], guidance: -1 }, 400, 'body/guidance must be >= 0'],
    [{ prompt: [{ text: 'a' }], seed: 1.5 }, 400, 'body/seed must be integer'],
    [{ prompt: [{ text: 'a' }], seed: -1 }, 400, 'body/seed must be >= 0'],
    [{ prompt: [{ text: 'a' }], sampler: 'plms' }, 400, /^body\/sampler must be equal to constant/],
    [{ prompt: [{ text: 'a' }], foo: 1 }, 400, 'body must NOT have additional properties'],
    [{ prompt: [{ text: 'a', image: 'x' }] }, 400, 'body/prompt/0 must NOT have more than 1 properties'],
    [{ prompt: [{}] }, 400, 'body/prompt/0 must NOT have fewer than 1 properties'],
    [{ prompt: 'a <img:x.png> dog' }, 400, 'body/prompt must be array'],
    [{ prompt: [{ text: 'a' }], steps: '5' }, 400, 'body/steps must be integer'],
    [{ prompt: [{ image: '!!not base64!!' }] }, 400, /^prompt segment 1: image is not base64 data/],
    [
      { prompt: [{ image: b64(Buffer.from('this is not an image\n')) }] },
      400,
      'prompt segment 1: the image data is not an image sharp can read (PNG, JPEG, WebP, GIF, TIFF, AVIF or SVG)',
    ],
    [
      { prompt: [{ text: 'a' }, { image: '' }] },
      400,
      'prompt segment 2: the image data is an empty file, not an image',
    ],
    [
      { prompt: [{ image: b64(hugePngHeader(20000, 20000)) }] },
      400,
      'prompt segment 1: the image data is over the 100 megapixel limit',
    ],
    [
      { prompt: [{ image: b64(red) }, { image: b64(red) }, { text: 'x' }, { image: b64(red) }, { image: b64(red) }] },
      400,
      'prompt segment 5: has 4 images; this model takes at most 3 (the first one too many is here)',
    ],
    [
      { prompt: [{ text: 'a' }], negativePrompt: [{ text: 'x' }, { image: b64(Buffer.from('nope')) }] },
      400,
      /^negative prompt segment 2: the image data is not an image/,
    ],
    [{ prompt: [{ upload: 'x' }] }, 400, "prompt segment 1: no file part named 'x' in this request"],
    [
      { prompt: [{ image: b64(Buffer.alloc(300 * 1024)) }] },
      413,
      'prompt segment 1: the image is 300 KiB, over the 256 KiB limit per image',
    ],
    [{ prompt: [{ text: 'x'.repeat(10_001) }] }, 400, 'body/prompt/0/text must NOT have more than 10000 characters'],
  ];
  for (const [json, status, msg] of cases) {
    const r = await post(json);
    assert.equal(r.status, status, `${JSON.stringify(json).slice(0, 80)}: ${JSON.stringify(r.body)}`);
    assert.deepEqual(Object.keys(r.body), ['error']);
    if (typeof msg === 'string') assert.equal(r.body.error, msg);
    else assert.match(r.body.error, msg);
    assert.doesNotMatch(r.body.error, /\n|    at /);
  }
  const raw = async (body: BodyInit, type?: string) =>
    call(`${api}/generations`, { method: 'POST', body, headers: type ? { 'content-type': type } : {} });
  const tooBig = await raw(JSON.stringify({ prompt: [{ text: 'x'.repeat(2.1 * 2 ** 20) }] }), 'application/json');
  assert.deepEqual([tooBig.status, tooBig.body], [413, { error: 'the request body is over the 2 MiB limit' }]);
  const notJson = await raw('{"prompt": [', 'application/json');
  assert.equal(notJson.status, 400);
  assert.match(notJson.body.error, /JSON/);
  assert.deepEqual((await raw('a dog', 'text/plain')).body, {
    error: "content type 'text/plain' is not accepted: send application/json or multipart/form-data",
  });
  assert.equal((await raw('a dog', 'text/plain')).status, 415);

  const form = (request: string | undefined, files: Record<string, Buffer | Buffer[]>) => {
    const f = new FormData();
    if (request !== undefined) f.set('request', request);
    for (const [k, v] of Object.entries(files))
      for (const b of [v].flat()) f.append(k, new Blob([new Uint8Array(b)]), 'x.png');
    return f;
  };
  const multipartCases: [FormData, number, string | RegExp][] = [
    [form(undefined, { a: red }), 400, "body must have required property 'request'"],
    [form('{nope', { a: red }), 400, /^the 'request' field is not JSON \(/],
    [form(JSON.stringify({ prompt: [{ upload: 'a' }], steps: 0 }), { a: red }), 400, 'request/steps must be >= 1'],
    [
      form(JSON.stringify({ prompt: [{ upload: 'a' }] }), { a: red, b: red }),
      400,
      "file part 'b' is not named by any { upload } segment",
    ],
    [
      form(JSON.stringify({ prompt: [{ upload: 'a' }] }), { a: [red, red] }),
      400,
      "the multipart body has 2 parts named 'a'; give each upload its own name",
    ],
    [
      form(JSON.stringify({ prompt: [{ upload: 'a' }] }), { a: Buffer.alloc(300 * 1024) }),
      413,
      'an uploaded file is over the 256 KiB limit per image',
    ],
    [
      form(JSON.stringify({ prompt: [{ upload: 'a' }] }), { a: Buffer.from('GIF89a nope') }),
      400,
      /^prompt segment 1: the image data is not an image sharp can read/,
    ],
  ];
  for (const [body, status, msg] of multipartCases) {
    const r = await raw(body);
    assert.equal(r.status, status, JSON.stringify(r.body));
    if (typeof msg === 'string') assert.equal(r.body.error, msg);
    else assert.match(r.body.error, msg);
  }
  // nothing was stored for any refused request
  assert.equal(readdirSync(join(out, 'jobs')).length, stored);
  const jobs = (await call(`${api}/generations?limit=100`)).body.items;
  assert.equal(jobs.length, stored);

  for (const [url, status] of [
    ['/generations/0000000aa-000000', 404],
    ['/generations/../../etc/passwd', 404],
    ['/generations/NOT-AN-ID', 404],
    [`/generations/${jobs[0].id}/images/9.png`, 404],
    [`/generations/${jobs[0].id}/images/..%2Fjob.json`, 404],
    [`/generations/${jobs[0].id}/references/secret.png`, 404],
    ['/generations?limit=0', 400],
    ['/generations?before=x', 400],
    ['/nothing', 404],
  ] as const) {
    const r = await call(`${api}${url}`);
    assert.equal(r.status, status, `${url}: ${JSON.stringify(r.body)}`);
    assert.equal(typeof r.body.error, 'string');
  }
  assert.equal(
    (await call(`${api}/generations/0000000aa-000000`)).body.error,
    "no generation '0000000aa-000000' (never made, deleted, or past the retention limit)",
  );
});

test('a full queue answers 429 with Retry-After; cancel a queued job (200) and a running one (202, stops between steps)', async () => {
  const long = { prompt: [{ text: 'a dog' }], steps: 1000, seed: 1 };
  const running = await post(long);
  assert.equal(running.status, 202);
  // wait until it samples, so the next two wait in the queue
  await events(`${s.url}${running.body.events}`, { until: (e) => e.event === 'progress' });
  const q1 = await post({ ...long, steps: 2 });
  const q2 = await post({ ...long, steps: 2 });
  assert.deepEqual([q1.status, q2.status, q1.body.state, q2.body.state], [202, 202, 'queued', 'queued']);
  const full = await post(long);
  assert.equal(full.status, 429);
  assert.equal(full.body.error, 'the queue is full; try again later (2 jobs waiting)');
  assert.match(full.headers.get('retry-after')!, /^[1-9]\d*$/);
  const health = (await call(`${api}/health`)).body;
  assert.deepEqual([health.running, health.queued], [running.body.id, 2]);

  const c1 = await call(`${api}/generations/${q1.body.id}`, { method: 'DELETE' });
  assert.deepEqual([c1.status, c1.body.state], [200, 'cancelled']);
  const stream = events(`${s.url}${running.body.events}`);
  const c0 = await call(`${api}/generations/${running.body.id}`, { method: 'DELETE' });
  assert.equal(c0.status, 202);
  assert.ok(['running', 'cancelled'].includes(c0.body.state), c0.body.state); // it may stop before the answer leaves
  const evs = await stream;
  const end = evs[evs.length - 1]!.data;
  assert.equal(end.state, 'cancelled');
  const steps = evs.filter((e) => e.event === 'progress').map((e) => e.data.step);
  assert.ok(Math.max(0, ...steps) < 1000, 'stopped before the last step');
  assert.deepEqual(end.images, []);
  // the next queued job runs normally after the cancelled one
  const after = await waitFor(s.url, q2.body.id, ['done', 'failed', 'cancelled']);
  assert.equal(after.state, 'done', after.error);
  // DELETE on a cancelled (finished) job removes it
  assert.equal((await call(`${api}/generations/${q1.body.id}`, { method: 'DELETE' })).status, 204);
  assert.equal((await call(`${api}/generations/${q1.body.id}`)).status, 404);
});

test('the gallery: newest first, paged; DELETE of a finished job removes it and its files', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push((await post({ prompt: [{ text: `dog ${i}` }], steps: 1, seed: i })).body.id);
  for (const id of ids) await waitFor(s.url, id, ['done']);
  const all = (await call(`${api}/generations?limit=100`)).body;
  assert.equal(all.next, null);
  const sorted = [...all.items.map((j: any) => j.id)].sort().reverse();
  assert.deepEqual(
    all.items.map((j: any) => j.id),
    sorted,
  );
  assert.deepEqual(
    all.items.slice(0, 3).map((j: any) => j.id),
    [...ids].reverse(),
  );
  const p1 = (await call(`${api}/generations?limit=2`)).body;
  const p2 = (await call(`${api}/generations?limit=2&before=${p1.next}`)).body;
  assert.deepEqual(
    [...p1.items, ...p2.items].map((j: any) => j.id),
    all.items.slice(0, 4).map((j: any) => j.id),
  );
  const del = await call(`${api}/generations/${ids[1]}`, { method: 'DELETE' });
  assert.equal(del.status, 204);
  assert.ok(!existsSync(join(out, 'jobs', ids[1]!)));
  assert.equal((await call(`${api}/generations/${ids[1]}/images/1.png`)).status, 404);
  assert.ok(!(await call(`${api}/generations?limit=100`)).body.items.some((j: any) => j.id === ids[1]));
  assert.equal(JSON.parse(readFileSync(join(out, 'jobs', ids[0]!, 'job.json'), 'utf8')).state, 'done');
});
