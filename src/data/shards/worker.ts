// Worker thread for runShards: makes whole shards on request.
import { parentPort, workerData } from 'node:worker_threads';
import { openSource, type RunSpec } from '../sources.ts';
import { makeShard } from './run.ts';

const { spec, outDir } = workerData as { spec: RunSpec; outDir: string };
const port = parentPort!;
const source = await openSource(spec, (line) => port.postMessage({ type: 'log', line }));
port.on('message', (k: number) => {
  makeShard(source, spec, k, outDir).then(
    (rec) => port.postMessage({ type: 'done', rec }),
    (err: Error) => {
      throw err;
    },
  );
});
port.postMessage({ type: 'ready' });
