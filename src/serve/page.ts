// The web page: web/index.html and web/style.css as they are, web/main.ts bundled by esbuild (tsx's own
// bundler) into one ES module, in memory when the server starts (~0.1 s). Everything is served from here: the page
// works offline and loads nothing from any other host.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build, stop } from 'esbuild';

const WEB = (f: string) => fileURLToPath(new URL(`./web/${f}`, import.meta.url));

export interface PageFile {
  type: string;
  body: string | Uint8Array;
}

export async function buildPage(): Promise<Record<string, PageFile>> {
  const [html, css, js] = await Promise.all([
    readFile(WEB('index.html'), 'utf8'),
    readFile(WEB('style.css'), 'utf8'),
    build({
      entryPoints: [WEB('main.ts')],
      bundle: true,
      write: false,
      format: 'esm',
      target: 'es2022',
      minify: true,
      sourcemap: 'inline',
      logLevel: 'silent',
    }),
  ]);
  await stop(); // esbuild's service process is not needed after this one build
  return {
    '/': { type: 'text/html; charset=utf-8', body: html },
    '/style.css': { type: 'text/css; charset=utf-8', body: css },
    '/app.js': { type: 'text/javascript; charset=utf-8', body: js.outputFiles[0]!.contents },
  };
}
