// Reading user-named image files: only regular files, and a bounded number of bytes. Devices, FIFOs and sockets
// are refused at once (a FIFO without a writer, or /dev/zero, would otherwise block or never end).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readImageFile, decodeImage, encodePng, ImageFileError, MAX_IMAGE_FILE_BYTES } from '../../src/image/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'mumu-file-'));

test('a regular file is read whole; the bound is on bytes', async () => {
  const png = await encodePng({ width: 2, height: 1, channels: 3, data: Uint8Array.from([255, 0, 0, 0, 0, 255]) });
  writeFileSync(join(dir, 'ok.png'), png);
  assert.deepEqual(await readImageFile(join(dir, 'ok.png')), png);
  assert.deepEqual(Array.from((await decodeImage(join(dir, 'ok.png'))).data), [255, 0, 0, 0, 0, 255]);
  writeFileSync(join(dir, 'eleven.bin'), Buffer.alloc(11));
  assert.equal((await readImageFile(join(dir, 'eleven.bin'), { maxBytes: 11 })).length, 11);
  await assert.rejects(
    readImageFile(join(dir, 'eleven.bin'), { maxBytes: 10 }),
    /'.*eleven\.bin' is 0 MiB, over the 0 MiB limit for an image file/,
  );
  assert.equal(MAX_IMAGE_FILE_BYTES, 256 * 2 ** 20);
});

test('devices, FIFOs, sockets and folders are refused at once, by what they are', { timeout: 10_000 }, async () => {
  const fifo = join(dir, 'pipe.png');
  execFileSync('mkfifo', [fifo]);
  mkdirSync(join(dir, 'folder.png'));
  const sock = join(dir, 'sock.png');
  const server = createServer().listen(sock);
  await new Promise((r) => server.once('listening', r));
  try {
    const cases: [string, RegExp][] = [
      [fifo, /pipe\.png' is a FIFO \(named pipe\), not a regular file$/],
      ['/dev/zero', /'\/dev\/zero' is a character device, not a regular file$/],
      [sock, /sock\.png' is a socket, not a regular file$/],
      [join(dir, 'folder.png'), /folder\.png' is a folder, not a file$/],
      [join(dir, 'missing.png'), /missing\.png' not found$/],
    ];
    for (const [file, re] of cases) {
      await assert.rejects(readImageFile(file), (e: Error) => e instanceof ImageFileError && re.test(e.message), file);
      await assert.rejects(decodeImage(file), re, `decodeImage ${file}`);
    }
  } finally {
    server.close();
  }
});
