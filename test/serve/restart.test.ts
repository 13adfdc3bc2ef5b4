// Jobs are never silently lost: a generation process that dies fails its job and is restarted; a server killed
// with jobs in flight reports them failed when it starts again; retention drops the oldest finished jobs.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve, call, events, waitFor, type Served } from './helpers.ts';
import { makeTinyModel } from '../pipeline/tiny-model.ts';

const servers: Served[] = [];
after(async () => {
  for (const s of servers) await s.stop('SIGKILL');
});
const start = async (args: string[], group = false) => {
  const s = await serve(args, { group });
  servers.push(s);
  return s;
};
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
async function gone(pid: number, ms = 10_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50)))
    if (!alive(pid)) return true;
  return false;
}
const long = { prompt: [{ text: 'a dog' }], steps: 1000, seed: 1 };

test('a dead generation process fails its job and is restarted; a killed server reports its jobs failed at restart; retention', async () => {
  const model = await makeTinyModel();
  const out = mkdtempSync(join(tmpdir(), 'mumu-serve-'));
  const a = await start(['--model', model, '--out', out]);
  const post = (base: string, json: unknown) => call(`${base}/api/generations`, { json });

  // the generation process dies mid-job
  const done = await post(a.url, { prompt: [{ text: 'a cat' }], steps: 2, seed: 3 });
  await waitFor(a.url, done.body.id, ['done']);
  const victim = await post(a.url, long);
  await events(`${a.url}${victim.body.events}`, { until: (e) => e.event === 'progress' });
  const worker = a.workerPid()!;
  process.kill(worker, 'SIGKILL');
  const failed = await waitFor(a.url, victim.body.id, ['failed']);
  assert.equal(failed.error, 'the generation process stopped (SIGKILL) during this job');
  const next = await post(a.url, { prompt: [{ text: 'a cat' }], steps: 2, seed: 4 });
  assert.equal((await waitFor(a.url, next.body.id, ['done', 'failed'])).state, 'done');
  assert.notEqual(a.workerPid(), worker);

  // the server is killed with one job running and one queued
  const running = await post(a.url, long);
  const queued = await post(a.url, { ...long, steps: 2 });
  await events(`${a.url}${running.body.events}`, { until: (e) => e.event === 'progress' });
  const worker2 = a.workerPid()!;
  assert.equal(await a.stop('SIGKILL'), null);
  assert.ok(await gone(worker2), 'the generation process exits with its server');

  const b = await start(['--model', model, '--out', out], true);
  assert.match(b.stderr(), /mumu serve: 2 job\(s\) in flight when the server last stopped are marked failed/);
  const r1 = (await call(`${b.url}/api/generations/${running.body.id}`)).body;
  const r2 = (await call(`${b.url}/api/generations/${queued.body.id}`)).body;
  assert.deepEqual([r1.state, r1.error], ['failed', 'the server stopped while this job was running; submit it again']);
  assert.deepEqual([r2.state, r2.error], ['failed', 'the server stopped before this job ran; submit it again']);
  const kept = (await call(`${b.url}/api/generations/${done.body.id}`)).body;
  assert.equal(kept.state, 'done');
  assert.equal((await fetch(`${b.url}${kept.images[0]}`)).status, 200);

  // Ctrl+C (SIGINT to the whole process group, generation process included): the server stops gracefully, and
  // the running job ends failed with the same message, told on its event stream
  const c1 = await post(b.url, long);
  const stream = events(`${b.url}${c1.body.events}`);
  await waitFor(b.url, c1.body.id, ['running']);
  const worker3 = b.workerPid()!;
  assert.equal(await b.stop('SIGINT'), 0);
  assert.match(b.stderr(), /mumu serve: SIGINT, stopping/);
  assert.ok(await gone(worker3));
  const told = await stream;
  assert.deepEqual(
    [told[told.length - 1]!.data.state, told[told.length - 1]!.data.error],
    ['failed', 'the server stopped while this job was running; submit it again'],
  );
  const c = await start(['--model', model, '--out', out, '--keep', '2', '--queue', '0']);
  assert.doesNotMatch(c.stderr(), /in flight/);
  const list = (await call(`${c.url}/api/generations?limit=100`)).body.items;
  // --keep 2: the two newest finished jobs stay, the rest are gone from disk too
  assert.deepEqual(
    list.map((j: any) => j.id),
    [c1.body.id, queued.body.id],
  );
  assert.equal(list[0].error, 'the server stopped while this job was running; submit it again');
  assert.deepEqual(readdirSync(join(out, 'jobs')).sort(), [queued.body.id, c1.body.id].sort());
  assert.ok(!existsSync(join(out, 'jobs', done.body.id)));
  // --queue 0: a job is taken only while none runs
  const only = await post(c.url, long);
  assert.equal(only.status, 202);
  assert.equal((await post(c.url, long)).status, 429);
  assert.equal((await call(`${c.url}/api/generations/${only.body.id}`, { method: 'DELETE' })).status, 202);
  await waitFor(c.url, only.body.id, ['cancelled']);
  assert.equal((await post(c.url, { ...long, steps: 1 })).status, 202);
});
