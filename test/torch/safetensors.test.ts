// safetensors: byte vectors built by hand from the format spec (8-byte LE header length, JSON header, data), never
// with the writer under test; malformed files, one per rule; round trips of every dtype through files and Tensors.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  type DType,
  type Tensor,
  ITEMSIZE,
  tensor,
  fromBytes,
  MAX_HEADER_BYTES,
  readSafetensorsHeader,
  SafetensorsFile,
  loadSafetensors,
  saveSafetensors,
  serializeSafetensors,
  parseSafetensors,
} from '../../src/torch/index.ts';

const enc = new TextEncoder();
const u8 = (...xs: number[]) => Uint8Array.from(xs);
// [u64 little-endian header length][header bytes][data]; n overrides the length field for malformed cases.
function st(header: string | Uint8Array, data: ArrayLike<number> = [], n?: bigint): Uint8Array {
  const h = typeof header === 'string' ? enc.encode(header) : header;
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, n ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}
const f32 = (...xs: number[]) => {
  const b = new Uint8Array(4 * xs.length);
  xs.forEach((x, i) => new DataView(b.buffer).setFloat32(4 * i, x, true));
  return b;
};
const concat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));

let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mumu-st-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const tmp = (name: string) => path.join(dir, name);

// What Python's `safetensors.torch.save_file({"a": torch.tensor([[1., 2.], [3., 4.]])}, f)` writes, derived by hand:
// compact JSON of 57 bytes, padded with 7 spaces to 64, then 1.0, 2.0, 3.0, 4.0 as float32 LE (0x3f800000, ...).
const REF_A = concat(
  u8(64, 0, 0, 0, 0, 0, 0, 0),
  enc.encode('{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}       '),
  u8(0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40),
);
// The same with metadata={"format": "pt"}: __metadata__ comes first; 88 bytes of JSON is already 8-aligned.
const REF_A_META = concat(
  u8(88, 0, 0, 0, 0, 0, 0, 0),
  enc.encode('{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}'),
  REF_A.subarray(72),
);

describe('reference vectors', () => {
  test('serializeSafetensors writes the reference bytes for {"a": [[1,2],[3,4]]}', () => {
    assert.deepEqual(
      serializeSafetensors([{ name: 'a', dtype: 'float32', shape: [2, 2], data: f32(1, 2, 3, 4) }]),
      REF_A,
    );
    assert.deepEqual(
      serializeSafetensors([{ name: 'a', dtype: 'float32', shape: [2, 2], data: f32(1, 2, 3, 4) }], { format: 'pt' }),
      REF_A_META,
    );
  });

  test('saveSafetensors of a Tensor writes the same bytes, and loads back with its metadata', () => {
    saveSafetensors(tmp('ref.safetensors'), {
      a: tensor([
        [1, 2],
        [3, 4],
      ]),
    });
    assert.deepEqual(new Uint8Array(fs.readFileSync(tmp('ref.safetensors'))), REF_A);
    saveSafetensors(
      tmp('refm.safetensors'),
      {
        a: tensor([
          [1, 2],
          [3, 4],
        ]),
      },
      { format: 'pt' },
    );
    assert.deepEqual(new Uint8Array(fs.readFileSync(tmp('refm.safetensors'))), REF_A_META);
    const { tensors, metadata } = loadSafetensors(tmp('refm.safetensors'));
    assert.deepEqual(metadata, { format: 'pt' });
    assert.equal(tensors.a!.dtype, 'float32');
    assert.deepEqual(tensors.a!.toList(), [
      [1, 2],
      [3, 4],
    ]);
  });

  test('parseSafetensors reads the reference bytes', () => {
    const { entries, metadata } = parseSafetensors(REF_A_META);
    assert.deepEqual(metadata, { format: 'pt' });
    assert.equal(entries.length, 1);
    assert.deepEqual(
      { ...entries[0]!, data: [...entries[0]!.data] },
      { name: 'a', dtype: 'float32', shape: [2, 2], data: [...f32(1, 2, 3, 4)] },
    );
  });

  test('an empty file is "{}" padded to 8 bytes', () => {
    const empty = concat(u8(8, 0, 0, 0, 0, 0, 0, 0), enc.encode('{}      '));
    assert.deepEqual(serializeSafetensors([]), empty);
    assert.deepEqual(parseSafetensors(empty), { entries: [], metadata: {} });
  });

  test('the writer orders tensors by descending dtype alignment, then name, as the reference writer does', () => {
    const json =
      '{"c":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},' +
      '"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},' +
      '"z":{"dtype":"F16","shape":[1],"data_offsets":[12,14]},' +
      '"b":{"dtype":"U8","shape":[3],"data_offsets":[14,17]},' +
      '"d":{"dtype":"BOOL","shape":[2],"data_offsets":[17,19]}}';
    assert.equal(json.length, 273); // 273 + 7 spaces = 280, a multiple of 8
    const c = u8(0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
      a = f32(0.5),
      z = u8(0x00, 0x3c),
      b = u8(7, 8, 9),
      d = u8(1, 0);
    const expected = st(json + ' '.repeat(7), concat(c, a, z, b, d));
    const out = serializeSafetensors([
      { name: 'b', dtype: 'uint8', shape: [3], data: b },
      { name: 'd', dtype: 'bool', shape: [2], data: d },
      { name: 'a', dtype: 'float32', shape: [1], data: a },
      { name: 'z', dtype: 'float16', shape: [1], data: z },
      { name: 'c', dtype: 'int64', shape: [1], data: c },
    ]);
    assert.deepEqual(out, expected);
  });
});

describe('reader accepts', () => {
  test('headers padded with any number of trailing spaces, and an unaligned data start', () => {
    const buf = st('{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' + ' '.repeat(13), f32(1.5, -2));
    const t = fromBytes(parseSafetensors(buf).entries[0]!.data, [2], 'float32');
    assert.deepEqual(t.toList(), [1.5, -2]);
  });

  test('tensors listed out of offset order, scalars, empty tensors and a null __metadata__', () => {
    const json =
      '{"__metadata__":null,"s":{"dtype":"I32","shape":[],"data_offsets":[4,8]},' +
      '"e":{"dtype":"F64","shape":[0,3],"data_offsets":[8,8]},"f":{"dtype":"I32","shape":[1],"data_offsets":[0,4],"extra":1}}';
    const { entries, metadata } = parseSafetensors(st(json, u8(1, 0, 0, 0, 2, 0, 0, 0)));
    assert.deepEqual(metadata, {});
    assert.deepEqual(
      entries.map((e) => [e.name, e.shape, [...e.data]]),
      [
        ['f', [1], [1, 0, 0, 0]],
        ['s', [], [2, 0, 0, 0]],
        ['e', [0, 3], []],
      ],
    );
    assert.deepEqual(fromBytes(entries[1]!.data, [], 'int32').item(), 2);
    assert.deepEqual(fromBytes(entries[2]!.data, [0, 3], 'float64').shape, [0, 3]);
  });
});

describe('malformed files are rejected', () => {
  const t1 = (dtype: string, shape: string, offsets: string) =>
    `{"t":{"dtype":${dtype},"shape":${shape},"data_offsets":${offsets}}}`;
  const cases: [string, Uint8Array, RegExp][] = [
    ['shorter than the length prefix', u8(8, 0, 0, 0, 0), /5 bytes, too short for the 8-byte header length/],
    [
      'header length just over 100 MB',
      st('{}', [], BigInt(MAX_HEADER_BYTES + 1)),
      /header length 100000001 exceeds the 100000000-byte limit/,
    ],
    ['header length 2^64 - 1', st('{}', [], 2n ** 64n - 1n), /exceeds the 100000000-byte limit/],
    [
      'header length past the end of the file',
      st('{}', [], 1000n),
      /header length 1000 exceeds the 2 bytes after the length prefix/,
    ],
    ['header not UTF-8', st(u8(0x7b, 0xff, 0x7d)), /not valid UTF-8/],
    ['header not JSON', st('{"t":'), /not valid JSON/],
    ['header a JSON array', st('[]      '), /not a JSON object/],
    ['header JSON null', st('null'), /not a JSON object/],
    ['header a JSON string', st('"x"'), /not a JSON object/],
    ['tensor entry not an object', st('{"t":[1]}'), /tensor 't': entry is not an object/],
    ['unknown dtype U16', st(t1('"U16"', '[1]', '[0,2]'), [0, 0]), /tensor 't': unknown dtype "U16"/],
    ['unknown dtype F8_E4M3', st(t1('"F8_E4M3"', '[1]', '[0,1]'), [0]), /unknown dtype "F8_E4M3"/],
    ['torch-style dtype name', st(t1('"float32"', '[1]', '[0,4]'), f32(0)), /unknown dtype "float32"/],
    ['dtype not a string', st(t1('4', '[1]', '[0,4]'), f32(0)), /unknown dtype 4/],
    ['dtype missing', st('{"t":{"shape":[1],"data_offsets":[0,4]}}', f32(0)), /unknown dtype undefined/],
    [
      'shape not a list',
      st(t1('"F32"', '2', '[0,8]'), f32(0, 0)),
      /tensor 't': shape 2 is not a list of non-negative integers/,
    ],
    ['shape with a negative dim', st(t1('"F32"', '[-1]', '[0,4]'), f32(0)), /shape \[-1\] is not a list/],
    ['shape with a fractional dim', st(t1('"F32"', '[1.5]', '[0,4]'), f32(0)), /shape \[1.5\] is not a list/],
    ['shape with a string dim', st(t1('"F32"', '["1"]', '[0,4]'), f32(0)), /shape \["1"\] is not a list/],
    ['shape missing', st('{"t":{"dtype":"F32","data_offsets":[0,4]}}', f32(0)), /shape undefined is not a list/],
    ['offsets not a pair', st(t1('"F32"', '[1]', '[0]'), f32(0)), /data_offsets \[0\] is not a pair/],
    ['offsets with three numbers', st(t1('"F32"', '[1]', '[0,4,8]'), f32(0)), /is not a pair/],
    [
      'offsets not integers',
      st(t1('"F32"', '[1]', '[0,4.5]'), f32(0)),
      /data_offsets \[0,4.5\] is not a pair of non-negative integers/,
    ],
    ['offsets as strings', st(t1('"F32"', '[1]', '[0,"4"]'), f32(0)), /is not a pair/],
    ['negative offset', st(t1('"F32"', '[1]', '[-4,0]'), f32(0)), /is not a pair/],
    ['offset beyond 2^53', st(t1('"F32"', '[1]', '[0,18014398509481984]'), f32(0)), /is not a pair/],
    ['begin > end', st(t1('"F32"', '[0]', '[4,0]'), f32(0)), /data_offsets \[4, 0\] has begin > end/],
    [
      'file shorter than the header claims',
      st(t1('"F32"', '[4]', '[0,16]'), f32(1, 2, 3)),
      /tensor 't': data_offsets \[0, 16\] run past the 12-byte data section \(file shorter than its header claims\)/,
    ],
    [
      'byte size != product(shape) x itemsize',
      st(t1('"F32"', '[2,2]', '[0,8]'), f32(1, 2)),
      /tensor 't': holds 8 bytes but F32 \[2,2\] needs 16/,
    ],
    [
      'shape whose byte size overflows',
      st(t1('"F32"', '[1099511627776,1099511627776]', '[0,4]'), f32(0)),
      /shape .* is too large/,
    ],
    [
      'overlapping tensors',
      st(
        '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}',
        f32(1, 2, 3),
      ),
      /tensor 'b' \[4, 12\] overlaps tensor 'a'/,
    ],
    [
      'a gap between tensors',
      st(
        '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}',
        f32(1, 2, 3),
      ),
      /tensor 'b' starts at 8, leaving a gap after byte 4/,
    ],
    [
      'trailing bytes after the last tensor',
      st(t1('"F32"', '[1]', '[0,4]'), f32(1, 2)),
      /data section is 8 bytes but the tensors cover only 4/,
    ],
    [
      '__metadata__ with a number value',
      st('{"__metadata__":{"epoch":3}}'),
      /__metadata__ value for 'epoch' is 3, not a string/,
    ],
    ['__metadata__ an array', st('{"__metadata__":["a"]}'), /__metadata__ is not an object of strings/],
    ['__metadata__ a string', st('{"__metadata__":"pt"}'), /__metadata__ is not an object of strings/],
  ];
  for (const [what, bytes, msg] of cases) {
    test(what, () => assert.throws(() => parseSafetensors(bytes), msg));
  }

  test('errors from files name the file and the tensor, from the header reader and from open', async () => {
    const file = tmp('bad.safetensors');
    fs.writeFileSync(file, st('{"weird.name":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}', f32(1, 2)));
    const msg = new RegExp(
      `^Error: safetensors ${file.replace(/[.\\]/g, '\\$&')}: tensor 'weird.name': data_offsets \\[0, 12\\] run past`,
    );
    assert.throws(
      () => readSafetensorsHeader(file),
      (e) => msg.test(String(e)),
    );
    assert.throws(
      () => SafetensorsFile.openSync(file),
      (e) => msg.test(String(e)),
    );
    await assert.rejects(SafetensorsFile.open(file), (e) => msg.test(String(e)));
    assert.throws(
      () => loadSafetensors(file),
      (e) => msg.test(String(e)),
    );
  });

  test('an absurd header length is refused before any allocation, from a file and from a descriptor', () => {
    const file = tmp('huge.safetensors');
    fs.writeFileSync(file, st('{}', [], 2n ** 63n));
    assert.throws(
      () => readSafetensorsHeader(file),
      new RegExp(`${path.basename(file)}: header length 9223372036854775808 exceeds`),
    );
    const fd = fs.openSync(file, 'r');
    try {
      assert.throws(() => readSafetensorsHeader(fd), /safetensors fd \d+: header length/);
    } finally {
      fs.closeSync(fd);
    }
  });
});

// Values for every dtype, with their little-endian encodings worked out by hand from the IEEE / two's complement forms.
const DTYPE_CASES: [DType, number[], number[]][] = [
  ['float32', [1, -2], [0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0]],
  ['float64', [1, -2], [0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0x00, 0xc0]],
  ['float16', [1, -2], [0x00, 0x3c, 0x00, 0xc0]],
  ['bfloat16', [1, -2], [0x80, 0x3f, 0x00, 0xc0]],
  ['int64', [1, -2], [1, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]],
  ['int32', [1, -2], [1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff]],
  ['int16', [1, -2], [1, 0, 0xfe, 0xff]],
  ['int8', [1, -2], [1, 0xfe]],
  ['uint8', [1, 254], [1, 0xfe]],
  ['bool', [1, 0], [1, 0]],
];
const ST_NAME: Record<DType, string> = {
  float32: 'F32',
  float64: 'F64',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  int32: 'I32',
  int16: 'I16',
  int8: 'I8',
  uint8: 'U8',
  bool: 'BOOL',
};

describe('round trips', () => {
  test('every dtype through a file and Tensor: bytes on disk are the spec encodings, values come back', () => {
    const file = tmp('all.safetensors');
    const ts: Record<string, Tensor> = {};
    for (const [dt, vals] of DTYPE_CASES) ts[dt] = tensor(dt === 'bool' ? vals.map(Boolean) : vals, { dtype: dt });
    saveSafetensors(file, ts, { note: 'every dtype', ünï: 'cödé "quoted"' });
    const f = SafetensorsFile.openSync(file);
    try {
      assert.deepEqual(f.metadata, { note: 'every dtype', ünï: 'cödé "quoted"' });
      for (const [dt, vals, bytes] of DTYPE_CASES) {
        assert.deepEqual({ ...f.info(dt), begin: 0, end: 0 }, { dtype: dt, shape: [2], begin: 0, end: 0 });
        assert.deepEqual([...f.getBytes(dt)], bytes, dt);
        // Every tensor's data is aligned to its itemsize, since the writer puts the widest dtypes first.
        assert.equal((f.header.dataStart + f.info(dt).begin) % ITEMSIZE[dt], 0, `${dt} alignment`);
        const t = f.getTensor(dt);
        assert.equal(t.dtype, dt);
        assert.deepEqual(t.toList(), dt === 'bool' ? vals.map(Boolean) : vals, dt);
      }
    } finally {
      f.close();
    }
    const { tensors } = loadSafetensors(file);
    for (const [dt] of DTYPE_CASES) assert.deepEqual(tensors[dt]!.toBytes(), ts[dt]!.toBytes(), dt);
  });

  test('every dtype byte-for-byte through serialize / parse, and through fromBytes / toBytes', () => {
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    const entries = DTYPE_CASES.map(([dt]) => {
      // Arbitrary bytes are valid for every dtype but bool, whose bytes must be 0 or 1.
      const data = Uint8Array.from({ length: 6 * ITEMSIZE[dt] }, () => (dt === 'bool' ? rnd() & 1 : rnd()));
      return { name: `t_${dt}`, dtype: dt, shape: [3, 2], data };
    });
    const { entries: back, metadata } = parseSafetensors(serializeSafetensors(entries, { k: 'v' }));
    assert.deepEqual(metadata, { k: 'v' });
    const byName = new Map(back.map((e) => [e.name, e]));
    for (const e of entries) {
      const got = byName.get(e.name)!;
      assert.deepEqual([got.dtype, got.shape, [...got.data]], [e.dtype, e.shape, [...e.data]], e.name);
      assert.deepEqual(fromBytes(got.data, got.shape, got.dtype).toBytes(), e.data, `${e.name} through Tensor`);
    }
    const json = new TextDecoder().decode(serializeSafetensors(entries).subarray(8));
    for (const [dt] of DTYPE_CASES) assert.match(json, new RegExp(`"t_${dt}":\\{"dtype":"${ST_NAME[dt]}"`));
  });

  test('non-contiguous, scalar and empty tensors save as their contiguous values', () => {
    const file = tmp('shapes.safetensors');
    saveSafetensors(file, {
      t: tensor([
        [1, 2],
        [3, 4],
      ]).transpose(0, 1),
      s: tensor(5),
      e: tensor([], { dtype: 'int64' }),
    });
    const { tensors } = loadSafetensors(file);
    assert.deepEqual(tensors.t!.toList(), [
      [1, 3],
      [2, 4],
    ]);
    assert.deepEqual([tensors.s!.shape, tensors.s!.item()], [[], 5]);
    assert.deepEqual([tensors.e!.shape, tensors.e!.dtype], [[0], 'int64']);
  });
});

describe('SafetensorsFile', () => {
  test('keys in data order, info, has, unknown names, use after close', async () => {
    const file = tmp('api.safetensors');
    fs.writeFileSync(
      file,
      st(
        '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[1],"data_offsets":[8,9]}}   ',
        concat(f32(3, 4), u8(9)),
      ),
    );
    const f = await SafetensorsFile.open(file);
    assert.deepEqual(f.keys(), ['w', 'b']);
    assert.deepEqual(f.info('b'), { dtype: 'uint8', shape: [1], begin: 8, end: 9 });
    assert.equal(f.header.dataStart, 8 + 109);
    assert.ok(f.has('w') && !f.has('x'));
    assert.throws(() => f.getTensor('x'), /api.safetensors: no tensor 'x' \(has 2: w, b\)/);
    assert.deepEqual(f.getTensor('w').toList(), [3, 4]);
    f.close();
    f.close(); // idempotent
    assert.throws(() => f.getBytes('w'), /read of tensor 'w' after close\(\)/);
  });

  test("reads lazily: the header at open, then only the asked tensor's byte range", () => {
    const file = tmp('lazy.safetensors');
    const big = 1 << 20; // float32 elements: 4 MiB that must not be read
    saveSafetensors(file, { a: tensor([1, 2, 3]), b: tensor(new Float32Array(big).fill(7)) });
    const realRead = fs.readSync;
    let bytesRead = 0;
    fs.readSync = ((...args: Parameters<typeof fs.readSync>) => {
      const n = realRead(...args);
      bytesRead += n;
      return n;
    }) as typeof fs.readSync;
    let f: SafetensorsFile | undefined;
    try {
      f = SafetensorsFile.openSync(file);
      assert.equal(bytesRead, f.header.dataStart, 'open reads the length prefix and header only');
      assert.deepEqual([f.info('a').begin, f.info('b').begin], [0, 12]);
      // Cut away most of b after open: a reader that loads or checks b on access would fail; a lazy one reads a.
      fs.truncateSync(file, f.header.dataStart + 12 + 100);
      bytesRead = 0;
      assert.deepEqual(f.getTensor('a').toList(), [1, 2, 3]);
      assert.equal(bytesRead, 12);
      assert.throws(
        () => f!.getBytes('b'),
        /lazy.safetensors: tensor 'b': file ended at byte \d+ \(was it truncated\?\)/,
      );
    } finally {
      fs.readSync = realRead;
      f?.close();
    }
  });
});

describe('saveSafetensors', () => {
  const files = () => fs.readdirSync(dir).filter((n) => n.startsWith('atomic'));

  test('replaces an existing file atomically and leaves no temporary behind', () => {
    const file = tmp('atomic.safetensors');
    saveSafetensors(file, { x: tensor([1]) });
    saveSafetensors(file, { y: tensor([2, 3]) });
    assert.deepEqual(files(), ['atomic.safetensors']);
    assert.deepEqual(Object.keys(loadSafetensors(file).tensors), ['y']);
  });

  test('a failure while streaming keeps the old file and removes the temporary', () => {
    const file = tmp('atomic.safetensors');
    const before = fs.readFileSync(file);
    const broken = {
      shape: [2],
      dtype: 'float32',
      toBytes: () => {
        throw new Error('device lost');
      },
    } as unknown as Tensor;
    assert.throws(() => saveSafetensors(file, { ok: tensor([1, 2]), broken }), /device lost/);
    const short = { shape: [2], dtype: 'float32', toBytes: () => new Uint8Array(4) } as unknown as Tensor;
    assert.throws(() => saveSafetensors(file, { short }), /tensor 'short' gave 4 bytes, expected 8/);
    assert.deepEqual(fs.readFileSync(file), before);
    assert.deepEqual(files(), ['atomic.safetensors']);
  });

  test('rejects names and metadata the format cannot hold', () => {
    assert.throws(
      () => saveSafetensors(tmp('x.safetensors'), { __metadata__: tensor([1]) }),
      /'__metadata__' cannot name a tensor/,
    );
    assert.throws(
      () => saveSafetensors(tmp('x.safetensors'), { a: tensor([1]) }, { n: 1 as unknown as string }),
      /metadata value for 'n' is not a string/,
    );
    assert.throws(
      () => serializeSafetensors([{ name: 'a', dtype: 'float32', shape: [2], data: u8(1) }]),
      /tensor 'a': has 1 bytes but float32 \[2\] needs 8/,
    );
    assert.throws(
      () =>
        serializeSafetensors([
          { name: 'a', dtype: 'uint8', shape: [1], data: u8(1) },
          { name: 'a', dtype: 'uint8', shape: [1], data: u8(2) },
        ]),
      /duplicate tensor name 'a'/,
    );
    assert.ok(!fs.existsSync(tmp('x.safetensors')));
  });
});
