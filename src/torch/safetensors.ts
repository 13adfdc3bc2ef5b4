// safetensors read/write (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N, N
// bytes of UTF-8 JSON {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {string: string}}, then the
// data section. Files come from anywhere, so every field is checked before it is trusted, and files are read
// tensor by tensor at their offsets so a multi-GB checkpoint never sits in memory twice.
import fs from 'node:fs'; // the default import (not named ones) so tests can observe fs.readSync
import path from 'node:path';
import { type DType, ITEMSIZE } from './dtype.ts';
import { fromBytes } from './factories.ts';
import type { Tensor } from './tensor.ts';

// The reference implementation's limit; a larger header is a corrupt or hostile file, refused before allocating.
export const MAX_HEADER_BYTES = 100_000_000;

const FROM_ST: Record<string, DType> = {
  F32: 'float32',
  F64: 'float64',
  F16: 'float16',
  BF16: 'bfloat16',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};
const TO_ST = Object.fromEntries(Object.entries(FROM_ST).map(([k, v]) => [v, k])) as Record<DType, string>;
// The reference writer's dtype order (ascending alignment); it writes the most aligned tensors first so every
// tensor's data stays aligned once the data start is aligned to 8.
const ALIGN_RANK = ['BOOL', 'U8', 'I8', 'I16', 'F16', 'BF16', 'I32', 'F32', 'F64', 'I64'];

export interface SafetensorsInfo {
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}
export interface SafetensorsHeader {
  tensors: Map<string, SafetensorsInfo>; // in data order
  metadata: Record<string, string>;
  dataStart: number; // absolute file offset of the data section; begin/end are relative to it
}
export interface SafetensorsEntry {
  name: string;
  dtype: DType;
  shape: number[];
  data: Uint8Array;
}

function fail(where: string, msg: string): never {
  throw new Error(`safetensors ${where}: ${msg}`);
}
const isPlainObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);
const isIndex = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

// Bytes a tensor of this shape and dtype takes, refusing sizes past 2^53 (no real file has them; JS numbers would
// silently round them).
function byteSize(shape: number[], dtype: DType, where: string): number {
  let n = ITEMSIZE[dtype];
  for (const d of shape)
    if (!Number.isSafeInteger((n *= d))) fail(where, `shape ${JSON.stringify(shape)} is too large`);
  return n;
}

// Checks the 8-byte length prefix against the limit and against the bytes actually there.
function headerLength(prefix: Uint8Array, available: number, where: string): number {
  if (prefix.length < 8) fail(where, `file is ${prefix.length} bytes, too short for the 8-byte header length`);
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) fail(where, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (n > BigInt(available - 8))
    fail(where, `header length ${n} exceeds the ${available - 8} bytes after the length prefix`);
  return Number(n);
}

// Parses and validates the JSON header against a data section of dataLength bytes.
function parseHeader(json: Uint8Array, dataLength: number, where: string): Omit<SafetensorsHeader, 'dataStart'> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(json);
  } catch {
    return fail(where, 'header is not valid UTF-8');
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    return fail(where, `header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(obj)) return fail(where, 'header is not a JSON object');

  const metadata: Record<string, string> = {};
  const meta = obj.__metadata__;
  if (meta !== undefined && meta !== null) {
    // the reference reader treats null as absent
    if (!isPlainObject(meta)) fail(where, '__metadata__ is not an object of strings');
    for (const [k, v] of Object.entries(meta)) {
      if (typeof v !== 'string') fail(where, `__metadata__ value for '${k}' is ${JSON.stringify(v)}, not a string`);
      metadata[k] = v;
    }
  }

  const list: [string, SafetensorsInfo][] = [];
  for (const [name, raw] of Object.entries(obj)) {
    if (name === '__metadata__') continue;
    const at = `${where}: tensor '${name}'`;
    // Unknown extra keys are ignored, as the reference reader does; the three known ones must be exact.
    if (!isPlainObject(raw)) fail(at, 'entry is not an object');
    const { dtype: st, shape, data_offsets: off } = raw as Record<string, unknown>;
    const dtype = typeof st === 'string' && Object.hasOwn(FROM_ST, st) ? FROM_ST[st]! : undefined;
    if (!dtype) fail(at, `unknown dtype ${JSON.stringify(st)} (supported: ${Object.keys(FROM_ST).join(', ')})`);
    if (!Array.isArray(shape) || !shape.every(isIndex))
      fail(at, `shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    if (!Array.isArray(off) || off.length !== 2 || !off.every(isIndex))
      fail(at, `data_offsets ${JSON.stringify(off)} is not a pair of non-negative integers`);
    const [begin, end] = off;
    if (begin > end) fail(at, `data_offsets [${begin}, ${end}] has begin > end`);
    if (end > dataLength)
      fail(
        at,
        `data_offsets [${begin}, ${end}] run past the ${dataLength}-byte data section (file shorter than its header claims)`,
      );
    const need = byteSize(shape, dtype, at);
    if (end - begin !== need) fail(at, `holds ${end - begin} bytes but ${st} ${JSON.stringify(shape)} needs ${need}`);
    list.push([name, { dtype, shape, begin, end }]);
  }

  // Like the reference reader: tensors, ordered by offset, must tile the data section exactly — no overlaps (which
  // would alias memory), no gaps and no trailing bytes (which would hide data no reader sees).
  list.sort(([, a], [, b]) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev = '';
  for (const [name, { begin, end }] of list) {
    if (begin < pos)
      fail(where, `tensor '${name}' [${begin}, ${end}] overlaps tensor '${prev}' (which ends at ${pos})`);
    if (begin > pos)
      fail(where, `tensor '${name}' starts at ${begin}, leaving a gap after byte ${pos} of the data section`);
    pos = end;
    prev = name;
  }
  if (pos !== dataLength) fail(where, `data section is ${dataLength} bytes but the tensors cover only ${pos}`);
  return { tensors: new Map(list), metadata };
}

// Reads fully or fails: fs.readSync may return short counts, and one call is capped near 2 GiB.
function readAt(fd: number, into: Uint8Array, position: number, where: string): void {
  for (let done = 0; done < into.length;) {
    const n = fs.readSync(fd, into, done, Math.min(into.length - done, 1 << 30), position + done);
    if (n === 0) fail(where, `file ended at byte ${position + done} (was it truncated?)`);
    done += n;
  }
}

// Reads and validates only the header of a file (by path or open descriptor).
export function readSafetensorsHeader(fdOrPath: number | string): SafetensorsHeader {
  if (typeof fdOrPath === 'string') {
    const fd = fs.openSync(fdOrPath, 'r');
    try {
      return readHeaderFd(fd, fdOrPath);
    } finally {
      fs.closeSync(fd);
    }
  }
  return readHeaderFd(fdOrPath, `fd ${fdOrPath}`);
}

function readHeaderFd(fd: number, where: string): SafetensorsHeader {
  const size = fs.fstatSync(fd).size;
  const prefix = new Uint8Array(Math.min(8, size));
  readAt(fd, prefix, 0, where);
  const n = headerLength(prefix, size, where);
  const json = new Uint8Array(n);
  readAt(fd, json, 8, where);
  return { ...parseHeader(json, size - 8 - n, where), dataStart: 8 + n };
}

// An open file whose tensors are read on demand, each from its own byte range.
export class SafetensorsFile {
  #fd: number | null;
  readonly path: string;
  readonly header: SafetensorsHeader;

  private constructor(fd: number, file: string) {
    this.#fd = fd;
    this.path = file;
    try {
      this.header = readHeaderFd(fd, file);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }
  static openSync(file: string): SafetensorsFile {
    return new SafetensorsFile(fs.openSync(file, 'r'), file);
  }
  // Only the header is read at open, which is small and bounded, so the async form simply wraps the sync one.
  static async open(file: string): Promise<SafetensorsFile> {
    return SafetensorsFile.openSync(file);
  }

  get metadata(): Record<string, string> {
    return this.header.metadata;
  }
  keys(): string[] {
    return [...this.header.tensors.keys()];
  }
  has(name: string): boolean {
    return this.header.tensors.has(name);
  }
  info(name: string): SafetensorsInfo {
    return (
      this.header.tensors.get(name) ??
      fail(
        this.path,
        `no tensor '${name}' (has ${this.keys().length}: ${this.keys().slice(0, 8).join(', ')}${this.keys().length > 8 ? ', ...' : ''})`,
      )
    );
  }
  // The tensor's raw little-endian bytes, read from its range alone.
  getBytes(name: string): Uint8Array {
    const { begin, end } = this.info(name);
    if (this.#fd === null) fail(this.path, `read of tensor '${name}' after close()`);
    const out = new Uint8Array(end - begin);
    readAt(this.#fd, out, this.header.dataStart + begin, `${this.path}: tensor '${name}'`);
    return out;
  }
  getTensor(name: string): Tensor {
    const { shape, dtype } = this.info(name);
    return fromBytes(this.getBytes(name), shape, dtype);
  }
  close(): void {
    if (this.#fd !== null) fs.closeSync(this.#fd);
    this.#fd = null;
  }
}

export function loadSafetensors(file: string): { tensors: Record<string, Tensor>; metadata: Record<string, string> } {
  const f = SafetensorsFile.openSync(file);
  try {
    const tensors: Record<string, Tensor> = {};
    for (const name of f.keys()) tensors[name] = f.getTensor(name);
    return { tensors, metadata: { ...f.metadata } };
  } finally {
    f.close();
  }
}

interface Planned {
  name: string;
  dtype: DType;
  shape: number[];
  nbytes: number;
}

// Lays tensors out as the reference writer does — descending dtype alignment, then name (UTF-8 byte order) — and
// returns the header bytes: length prefix plus JSON padded with spaces so the data starts 8-byte aligned.
function planHeader<T extends Planned>(
  items: T[],
  metadata: Record<string, string> | undefined,
  where: string,
): { order: T[]; head: Uint8Array } {
  const seen = new Set<string>();
  for (const { name } of items) {
    if (name === '__metadata__') fail(where, `'__metadata__' cannot name a tensor`);
    if (seen.has(name)) fail(where, `duplicate tensor name '${name}'`);
    seen.add(name);
  }
  for (const [k, v] of Object.entries(metadata ?? {}))
    if (typeof v !== 'string') fail(where, `metadata value for '${k}' is not a string`);
  const rank = (d: DType) => ALIGN_RANK.indexOf(TO_ST[d]);
  const order = [...items].sort(
    (a, b) => rank(b.dtype) - rank(a.dtype) || Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)),
  );
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const t of order) {
    header[t.name] = { dtype: TO_ST[t.dtype], shape: t.shape, data_offsets: [offset, (offset += t.nbytes)] };
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const n = Math.ceil(json.length / 8) * 8;
  const head = new Uint8Array(8 + n).fill(0x20, 8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(n), true);
  head.set(json, 8);
  return { order, head };
}

// In-memory form, for small payloads and tests.
export function serializeSafetensors(entries: SafetensorsEntry[], metadata?: Record<string, string>): Uint8Array {
  const items = entries.map((e) => {
    const nbytes = byteSize(e.shape, e.dtype, `<buffer>: tensor '${e.name}'`);
    if (e.data.length !== nbytes)
      fail(
        `<buffer>: tensor '${e.name}'`,
        `has ${e.data.length} bytes but ${e.dtype} ${JSON.stringify(e.shape)} needs ${nbytes}`,
      );
    return { ...e, nbytes };
  });
  const { order, head } = planHeader(items, metadata, '<buffer>');
  const out = new Uint8Array(head.length + order.reduce((s, t) => s + t.nbytes, 0));
  out.set(head);
  let pos = head.length;
  for (const t of order) {
    out.set(t.data, pos);
    pos += t.nbytes;
  }
  return out;
}

// Entries are views into buf (no copy), in data order.
export function parseSafetensors(
  buf: Uint8Array,
  where = '<buffer>',
): { entries: SafetensorsEntry[]; metadata: Record<string, string> } {
  const n = headerLength(buf.subarray(0, 8), buf.length, where);
  const data = buf.subarray(8 + n);
  const { tensors, metadata } = parseHeader(buf.subarray(8, 8 + n), data.length, where);
  const entries = [...tensors].map(([name, i]) => ({
    name,
    dtype: i.dtype,
    shape: i.shape,
    data: data.subarray(i.begin, i.end),
  }));
  return { entries, metadata };
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length;)
    done += fs.writeSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30));
}

// Writes tensor by tensor (one tensor's bytes in memory at a time) to a temporary file, fsyncs, then renames, so a
// crash never leaves a half-written checkpoint under the real name.
export function saveSafetensors(
  file: string,
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
): void {
  const items = Object.entries(tensors).map(([name, t]) => {
    const shape = [...t.shape];
    return { name, dtype: t.dtype, shape, nbytes: byteSize(shape, t.dtype, `${file}: tensor '${name}'`), t };
  });
  const { order, head } = planHeader(items, metadata, file);
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    writeAll(fd, head);
    for (const { name, nbytes, t } of order) {
      const bytes = t.toBytes();
      if (bytes.length !== nbytes) fail(file, `tensor '${name}' gave ${bytes.length} bytes, expected ${nbytes}`);
      writeAll(fd, bytes);
    }
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  // Persist the rename itself; some platforms cannot fsync a directory, which only weakens durability there.
  try {
    const dir = fs.openSync(path.dirname(file), 'r');
    try {
      fs.fsyncSync(dir);
    } finally {
      fs.closeSync(dir);
    }
  } catch {
    /* best effort */
  }
}
