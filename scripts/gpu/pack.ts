// Packs what `mumu train` needs on a CUDA host that has PyTorch but no Node and no npm packages (docs/TRAINING.md,
// "On a GPU"), into a folder that a device session carries (git ignores it) and scripts/gpu/run.sh unpacks there:
//
//   bundle.tar.NN  one tar (in parts of --part-mib, default one part) of
//     node.xz      this machine's Node binary, stripped, xz with the x86 filter (cached: re-used while Node is the same)
//     app.tar.xz   dist/cli/mumu-train.mjs   the trainer bundled into one file by esbuild
//                 node_modules/             only what cannot be bundled: sharp, resvg-js and opencv-js with their
//                                           prebuilt linux-x64 binaries and dependencies
//                 native/                   the binding's C++ sources and the N-API / node-addon-api headers, built
//                                           there with plain g++ against the host's PyTorch
//                 emoji-world.json          the EmojiWorld catalog and the SVGs of the configs' concepts (subset.ts)
//                 find-libtorch.mjs         the set-up's libtorch finder, reused by run.sh
//   parts.sha256   the parts' checksums (run.sh checks them), manifest.json: what went in, sizes, versions
//
// Usage: node --import tsx scripts/gpu/pack.ts [--out gpu-bundle] [--config FILE]... [--part-mib N]
// --config: the stage configs whose concepts decide which icons go in (default: every stage config in configs/ and
// configs/ab/). --part-mib: split the bundle into parts of at most N MiB, for calls that can carry only that much
// beside the tracked tree (each call carries some parts; carried parts stay on the machine while it is warm).
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { buildEmojiSubset, type ConceptFilter } from '../../src/data/emoji-world/index.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
// Packages the bundle loads at run time: native binaries (sharp, resvg) or required by computed name (opencv-js).
export const EXTERNAL = ['sharp', '@resvg/resvg-js', '@techstark/opencv-js'];
// Dependencies that are declared but never loaded: opencv-js lists mirada (22 MB of typings and browser helpers),
// while its dist/opencv.js requires only Node built-ins.
const NOT_LOADED = new Set(['mirada']);
// What a device session may carry with the working tree, in all (the device tool's limit).
const TRAVEL_LIMIT = 64 * 2 ** 20;

const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
const say = (line: string) => process.stderr.write(`[gpu pack] ${line}\n`);

function stageConfigs(): string[] {
  return ['configs', 'configs/ab']
    .flatMap((dir) =>
      fs
        .readdirSync(path.join(ROOT, dir))
        .filter((f) => f.endsWith('.json'))
        .map((f) => path.join(dir, f)),
    )
    .filter((f) => 'stage' in (JSON.parse(fs.readFileSync(path.join(ROOT, f), 'utf8')) as object));
}

// A package and, recursively, the dependencies it has installed (optional platform packages that npm skipped are
// not there and are not needed).
export function packageClosure(names: string[]): string[] {
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name) || NOT_LOADED.has(name)) return;
    const pj = path.join(ROOT, 'node_modules', name, 'package.json');
    if (!fs.existsSync(pj)) return;
    seen.add(name);
    const p = JSON.parse(fs.readFileSync(pj, 'utf8')) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    for (const d of Object.keys({ ...p.dependencies, ...p.optionalDependencies })) visit(d);
  };
  for (const n of names) {
    if (!fs.existsSync(path.join(ROOT, 'node_modules', n)))
      throw new Error(`node_modules/${n} is missing: run npm run setup first`);
    visit(n);
  }
  return [...seen].sort();
}

// The N-API C headers of the running Node (the official layout puts them in <prefix>/include/node; node-gyp keeps
// a copy in its cache).
function napiHeaderDir(): string {
  const candidates = [
    path.join(path.dirname(fs.realpathSync(process.execPath)), '../include/node'),
    path.join(process.env.HOME ?? '/root', '.cache/node-gyp', process.versions.node, 'include/node'),
  ];
  const dir = candidates.find((d) => fs.existsSync(path.join(d, 'node_api.h')));
  if (!dir) throw new Error(`no N-API headers (node_api.h) in ${candidates.join(' or ')}`);
  return dir;
}

// Node, stripped of its debug info (98 -> 86 MB) and xz'd with the x86 branch filter (~21 MB). A minute of CPU, so
// the result is kept in `cache` and re-used while the source binary is the same.
function packNode(cache: string): string {
  const src = fs.realpathSync(process.execPath);
  const st = fs.statSync(src);
  const stamp = `${src} ${process.version} ${st.size} ${st.mtimeMs}\n`;
  fs.mkdirSync(cache, { recursive: true });
  const target = path.join(cache, 'node.xz'),
    stampFile = path.join(cache, 'node.source');
  if (fs.existsSync(target) && fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === stamp) {
    say(`node.xz: kept from ${path.relative(ROOT, cache)} (${process.version}, ${mib(fs.statSync(target).size)})`);
    return target;
  }
  say(`node.xz: stripping and compressing ${src} (${process.version}; about a minute of CPU)`);
  const tmp = path.join(cache, 'node.stripped');
  try {
    execFileSync('strip', ['-o', tmp, src]);
  } catch {
    say('strip failed or missing: packing the binary as it is');
    fs.copyFileSync(src, tmp);
  }
  fs.writeFileSync(
    target,
    execFileSync('xz', ['-9e', '--x86', '--lzma2=preset=9e', '-T1', '-c', tmp], { maxBuffer: 2 ** 30 }),
  );
  fs.rmSync(tmp);
  fs.writeFileSync(stampFile, stamp);
  return target;
}

export async function bundleTrainer(stage: string): Promise<void> {
  await esbuild.build({
    entryPoints: [path.join(ROOT, 'scripts/gpu/train-entry.ts')],
    // two folders down, so src/torch/native.ts's `../../native/build/Release/mumu_torch.node` (relative to its
    // module, now this file) lands on the bundle's native/ folder
    outfile: path.join(stage, 'dist/cli/mumu-train.mjs'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: EXTERNAL,
    logLevel: 'warning',
    // CommonJS packages bundled into ESM call require() for Node built-ins: give them one. src/data/shards/run.ts
    // resolves tsx when it loads (for its worker threads, which training does not start): there is no tsx here.
    banner: {
      js: "import { createRequire as __mumuCreateRequire } from 'node:module';\nconst require = __mumuCreateRequire(import.meta.url);\nconst __mumuResolve = (s) => `mumu-gpu-bundle-has-no:${s}`;",
    },
    define: { 'import.meta.resolve': '__mumuResolve' },
  });
}

// The app folder as run.sh unpacks it (everything but Node): the bundled trainer, the packages it loads at run time,
// the binding's sources and headers, find-libtorch.mjs and the EmojiWorld subset for `configs`.
export async function stageApp(stage: string, configs: string[]) {
  await bundleTrainer(stage);
  say(`dist/cli/mumu-train.mjs: ${mib(fs.statSync(path.join(stage, 'dist/cli/mumu-train.mjs')).size)}`);

  const packages = packageClosure(EXTERNAL);
  for (const p of packages) copyDir(path.join(ROOT, 'node_modules', p), path.join(stage, 'node_modules', p));
  say(`node_modules: ${packages.join(', ')}`);

  const nat = path.join(stage, 'native');
  copyDir(path.join(ROOT, 'native/src'), path.join(nat, 'src'));
  fs.mkdirSync(path.join(nat, 'include'));
  const napi = napiHeaderDir();
  for (const h of ['node_api.h', 'node_api_types.h', 'js_native_api.h', 'js_native_api_types.h'])
    fs.copyFileSync(path.join(napi, h), path.join(nat, 'include', h));
  const addonApi = path.join(ROOT, 'node_modules/node-addon-api');
  for (const h of ['napi.h', 'napi-inl.h', 'napi-inl.deprecated.h'])
    fs.copyFileSync(path.join(addonApi, h), path.join(nat, 'include', h));
  fs.copyFileSync(path.join(ROOT, 'scripts/find-libtorch.mjs'), path.join(stage, 'find-libtorch.mjs'));

  const filters = configs.map(
    (f) =>
      (JSON.parse(fs.readFileSync(f, 'utf8')) as { data?: { concepts?: ConceptFilter } }).data?.concepts ?? undefined,
  );
  const subset = buildEmojiSubset(filters);
  fs.writeFileSync(path.join(stage, 'emoji-world.json'), JSON.stringify(subset));
  say(
    `emoji-world.json: ${Object.keys(subset.icons).length} icons for ${configs.length} configs, ${mib(fs.statSync(path.join(stage, 'emoji-world.json')).size)}`,
  );

  return { configs, packages, subset, napi };
}

function copyDir(from: string, to: string): void {
  fs.cpSync(from, to, {
    recursive: true,
    dereference: true,
    filter: (f) => !/\.(md|map|markdown)$/i.test(f) || path.basename(f) === 'LICENSE.md',
  });
}

function trackedBytes(): number | null {
  try {
    const files = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, maxBuffer: 2 ** 28 })
      .toString()
      .split('\0')
      .filter(Boolean);
    return files.reduce(
      (n, f) => n + (fs.existsSync(path.join(ROOT, f)) ? fs.statSync(path.join(ROOT, f)).size : 0),
      0,
    );
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: 'gpu-bundle' },
      config: { type: 'string', multiple: true },
      'part-mib': { type: 'string' },
    },
  });
  const t0 = performance.now();
  const out = path.resolve(values.out!);
  const stage = path.join(out, '.stage');
  fs.mkdirSync(out, { recursive: true });
  fs.rmSync(stage, { recursive: true, force: true });
  fs.mkdirSync(stage);

  // outside the bundle folder, which travels whole
  const nodeXz = packNode(path.join(ROOT, 'node_modules/.cache/mumu-gpu'));

  const { configs, packages, subset, napi } = await stageApp(
    stage,
    values.config?.length ? values.config : stageConfigs(),
  );

  const app = path.join(out, 'app.tar.xz');
  execFileSync('bash', [
    '-c',
    'set -o pipefail; tar -C "$1" --sort=name --owner=0 --group=0 -cf - . | xz -9 -T2 > "$2"',
    'pack',
    stage,
    app,
  ]);
  fs.rmSync(stage, { recursive: true, force: true });
  const sizes = { 'node.xz': fs.statSync(nodeXz).size, 'app.tar.xz': fs.statSync(app).size };

  // the one tar that travels, in parts
  for (const f of fs.readdirSync(out).filter((f) => /^bundle\.tar\.\d+$/.test(f))) fs.rmSync(path.join(out, f));
  const partBytes = values['part-mib'] ? Math.floor(Number(values['part-mib']) * 2 ** 20) : 0;
  if (values['part-mib'] && !(partBytes >= 2 ** 20))
    throw new Error(`--part-mib must be a number >= 1, got ${values['part-mib']}`);
  const whole = execFileSync(
    'tar',
    ['--owner=0', '--group=0', '-cf', '-', '-C', path.dirname(nodeXz), 'node.xz', '-C', out, 'app.tar.xz'],
    { maxBuffer: 2 ** 30 },
  );
  fs.rmSync(app);
  const parts: Record<string, string> = {};
  const step = partBytes || whole.length;
  for (let i = 0, k = 0; i < whole.length; i += step, k++) {
    const name = `bundle.tar.${String(k).padStart(2, '0')}`;
    const bytes = whole.subarray(i, i + step);
    fs.writeFileSync(path.join(out, name), bytes);
    parts[name] = crypto.createHash('sha256').update(bytes).digest('hex');
  }
  fs.writeFileSync(
    path.join(out, 'parts.sha256'),
    Object.entries(parts)
      .map(([n, h]) => `${h}  ${n}\n`)
      .join(''),
  );
  const total = whole.length;
  const manifest = {
    made: new Date().toISOString(),
    node: process.version,
    sizes: { ...sizes, bundle: total },
    parts,
    configs,
    packages,
    icon_packages: subset.packages,
    napi_headers: napi,
  };
  fs.writeFileSync(path.join(out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  say(
    `${path.relative(process.cwd(), out) || '.'}: node.xz ${mib(sizes['node.xz'])} + app.tar.xz ${mib(sizes['app.tar.xz'])} = ${mib(total)} in ${Object.keys(parts).length} part(s) (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
  );
  const tracked = trackedBytes();
  if (tracked !== null) {
    const travels = tracked + total;
    say(
      `a device call would send the tracked tree ${mib(tracked)} + this bundle = ${mib(travels)} of its ${mib(TRAVEL_LIMIT)} limit${travels > TRAVEL_LIMIT ? ' -- OVER: see docs/TRAINING.md "On a GPU"' : ''}`,
    );
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((e: Error) => {
    say(`error: ${e.message.split('\n')[0]}`);
    process.exitCode = 1;
  });
}
