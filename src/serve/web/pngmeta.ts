// The text chunks of a PNG (tEXt, zTXt, iTXt), read in the browser: the settings mumu stores in its images
// (src/cli/png.ts writes them).
const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

async function inflate(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(new DecompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export async function pngText(buf: ArrayBuffer): Promise<Record<string, string> | null> {
  const b = new Uint8Array(buf);
  if (b.length < 8 || SIGNATURE.some((v, i) => b[i] !== v)) return null;
  const view = new DataView(buf);
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8');
  const out: Record<string, string> = {};
  for (let off = 8; off + 12 <= b.length;) {
    const len = view.getUint32(off);
    const type = latin1.decode(b.subarray(off + 4, off + 8));
    const data = b.subarray(off + 8, off + 8 + len);
    off += 12 + len;
    if (type === 'IEND') break;
    const z = data.indexOf(0);
    if (z < 0) continue;
    const key = latin1.decode(data.subarray(0, z));
    if (type === 'tEXt') out[key] = latin1.decode(data.subarray(z + 1));
    else if (type === 'zTXt') out[key] = latin1.decode(await inflate(data.subarray(z + 2)));
    else if (type === 'iTXt') {
      const compressed = data[z + 1] === 1;
      let p = data.indexOf(0, z + 3); // end of the language tag
      p = data.indexOf(0, p + 1); // end of the translated key
      const body = data.subarray(p + 1);
      out[key] = utf8.decode(compressed ? await inflate(body) : body);
    }
  }
  return out;
}
