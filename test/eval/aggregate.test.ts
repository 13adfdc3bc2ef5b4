// The report's intervals: a bootstrap over cases (prompts), checked on cases whose bootstrap distribution is known
// exactly, and on outputs arranged so that an interval over outputs and one over cases must differ.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aggregate, caseInterval, pctCI, numCI, type Output, type Scores } from '../../src/eval/aggregate.ts';
import type { Case } from '../../src/eval/tasks.ts';

const scores = (following: number, preservation = NaN): Scores => ({
  preservation,
  control: NaN,
  following,
  style: following >= 0.5 ? 1 : 0,
  styleProb: 0,
  copy: NaN,
  leak: NaN,
  embedding: [1, 0],
  bestWindow: null,
});
// outputs of cases: values[c] are the seeds' scores of case c
function outputs(values: number[][]): Output[] {
  return values.flatMap((vs, c) => {
    const kase = { id: `case-${c}`, task: 'same-image', split: 'train', references: [] } as unknown as Case;
    return vs.map((v, seed) => ({ case: kase, system: 'mumu', seed, image: null!, scores: scores(v, v) }) as Output);
  });
}
const following = (s: Scores) => s.following;

test('two cases scoring 0 and 1: the resampled means are 0, 1/2, 1 with odds 1/4, 1/2, 1/4, so the 95% interval is [0, 1]', () => {
  assert.deepEqual(caseInterval(outputs([[0], [1]]), following), [0, 1]);
});

test('three cases 0, 0, 1: all-zero draws have odds 8/27 > 2.5% and all-one draws 1/27 > 2.5%, so [0, 1]', () => {
  assert.deepEqual(caseInterval(outputs([[0], [0], [1]]), following), [0, 1]);
});

test('no interval from one case, and none from a metric with no value', () => {
  assert.equal(caseInterval(outputs([[0, 1, 1, 0]]), following), null);
  assert.equal(caseInterval(outputs([[NaN], [NaN]]), following), null);
  assert.deepEqual(
    caseInterval(
      outputs([
        [NaN, 1],
        [1, NaN],
      ]),
      following,
    ),
    [1, 1],
  );
});

test('seeds of a prompt are resampled together: the same 16 scores give a wide interval when prompts differ, none when each prompt has the same mean', () => {
  const differ = caseInterval(
    outputs([
      [0, 0, 0, 0],
      [0, 0, 0, 0],
      [1, 1, 1, 1],
      [1, 1, 1, 1],
    ]),
    following,
  )!;
  const alike = caseInterval(
    outputs([
      [0, 0, 1, 1],
      [0, 1, 0, 1],
      [1, 1, 0, 0],
      [1, 0, 1, 0],
    ]),
    following,
  )!;
  assert.deepEqual(alike, [0.5, 0.5]);
  // resampling cases: the number of all-1 cases drawn is Binomial(4, 1/2), and 0 or 4 of them has odds 1/16 > 2.5%
  assert.deepEqual(differ, [0, 1]);
});

test('aggregate carries the intervals, deterministic, around the row mean; the table shows them only when wide', () => {
  const outs = outputs([
    [0.2, 0.4],
    [0.9, 0.7],
    [0.5, 0.5],
    [0.1, 0.3],
    [0.8, 1],
  ]);
  const a = aggregate(outs);
  const b = aggregate(outs);
  assert.deepEqual(a.ci, b.ci);
  const [lo, hi] = a.ci.following!;
  assert.ok(lo < a.following && a.following < hi, `${lo} < ${a.following} < ${hi}`);
  assert.ok(lo >= 0.1 && hi <= 1);
  assert.deepEqual(a.ci.preservation, a.ci.following); // the same values under another metric
  assert.equal(pctCI(0.17, [0.08, 0.27]), '17% (8-27)');
  assert.equal(pctCI(0.5, [0.5, 0.5]), '50%');
  assert.equal(numCI(0.3921, [0.371, 0.414]), '0.392 (0.37-0.41)');
  assert.equal(numCI(NaN, null), '–');
});
