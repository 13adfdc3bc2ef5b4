// Reading an image file a user named. Only regular files are read, and at most MAX_IMAGE_FILE_BYTES of one: a path
// naming a device (/dev/zero), a FIFO or a socket would otherwise block forever or never end. The file is opened
// non-blocking (so opening a FIFO without a writer returns at once), then checked on the open handle (no window
// between a check and the read), then read in chunks up to the bound (a file that grows while read stays bounded).
import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';

// Far above any image mumu can use (100 megapixels of PNG), far below what would exhaust memory.
export const MAX_IMAGE_FILE_BYTES = 256 * 2 ** 20;

// What is wrong with the file, as the end of a sentence about it ("'x.png' is a FIFO, not a regular file").
export class ImageFileError extends Error {
  constructor(
    readonly detail: string,
    readonly file: string,
  ) {
    super(`'${file}' ${detail}`);
    this.name = 'ImageFileError';
  }
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

const mib = (n: number) => `${Math.round(n / 2 ** 20)} MiB`;

export async function readImageFile(file: string, o: { maxBytes?: number } = {}): Promise<Buffer> {
  const max = o.maxBytes ?? MAX_IMAGE_FILE_BYTES;
  let fh: FileHandle;
  try {
    fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ImageFileError('not found', file);
    // a socket cannot be opened at all: say what it is
    if (code === 'ENXIO') throw new ImageFileError(`is ${kindOf(await stat(file))}, not a regular file`, file);
    if (code === 'EACCES') throw new ImageFileError('cannot be read (permission denied)', file);
    throw new ImageFileError(`cannot be read (${code ?? (e as Error).message})`, file);
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw new ImageFileError('is a folder, not a file', file);
    if (!st.isFile()) throw new ImageFileError(`is ${kindOf(st)}, not a regular file`, file);
    if (st.size > max)
      throw new ImageFileError(`is ${mib(st.size)}, over the ${mib(max)} limit for an image file`, file);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(max + 1 - total, Math.max(64 * 1024, st.size + 1)));
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > max)
        throw new ImageFileError(`grew past the ${mib(max)} limit for an image file while it was read`, file);
      chunks.push(buf.subarray(0, bytesRead));
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  } catch (e) {
    if (e instanceof ImageFileError) throw e;
    throw new ImageFileError(`cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, file);
  } finally {
    await fh.close();
  }
}
