// The one plotter (training loss curves and evaluation metric plots): what it draws for each option, and the PNG.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { linePlotSvg, plotLoss, smooth } from '../src/plot.ts';

test('linePlotSvg: markers per point, log scale drops non-positive values, smoothing labels the last EMA value', async () => {
  const pts: [number, number][] = [
    [16, 0.2],
    [64, 0.5],
    [144, 0.4],
    [256, 0.3],
  ];
  const lin = linePlotSvg('t', [{ name: 'a', color: '#000', points: pts }], {
    markers: true,
    yRange: [0, 1],
    xLabel: 'tokens per image',
  });
  assert.equal(lin.match(/<circle /g)?.length, 4);
  for (const x of ['16', '64', '144', '256']) assert.ok(lin.includes(`>${x}</text>`), `tick at ${x}`);
  assert.ok(lin.includes('>1.00</text>') && lin.includes('>0.00</text>'), 'y range covers [0, 1]');
  const log = linePlotSvg(
    'loss',
    [
      {
        name: 'loss',
        color: '#000',
        points: [
          [1, 1],
          [2, 0],
          [3, -1],
          [4, 0.1],
        ],
      },
    ],
    { logY: true, smoothing: 0.9 },
  );
  const polylines = [...log.matchAll(/points="([^"]+)"/g)].map((m) => m[1]!.split(' ').length);
  assert.deepEqual(polylines, [2, 2], 'raw + smoothed, each without the two non-positive points');
  assert.ok(log.includes(`(last ${smooth([1, 0.1]).at(-1)!.toPrecision(2)})`));
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mumu-plot-')), 'loss.png');
  await plotLoss(file, 'x <&> y', [{ name: 'loss', color: '#1f5fbf', points: pts }]);
  const meta = await sharp(file).metadata();
  assert.equal(meta.format, 'png');
  assert.equal(meta.width, 720);
});
