// Debian's chromium, driven by playwright-core (which never downloads a browser): found, launched with the flags a
// root user in a container needs, and real file drops through the DevTools protocol (the same trusted drag events
// a drop from the file manager makes).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// Why the browser test cannot run here, or null when it can. Root with no chromium is an error, not a skip:
// scripts/setup-browser.sh installs it for root.
export function chromiumSkipReason(): string | null {
  if (existsSync(CHROMIUM)) return null;
  const root = process.getuid?.() === 0;
  if (root)
    throw new Error(
      `${CHROMIUM} is missing: scripts/setup-browser.sh (run by npm test) should have installed Debian's chromium`,
    );
  return `${CHROMIUM} is not installed and this user is not root, so the test set-up cannot apt-get it (run: sudo apt-get install chromium)`;
}

export async function launchChromium(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'mumu-chromium-')); // a fresh --user-data-dir every time
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1100, height: 900 },
    timeout: 60_000,
    permissions: ['clipboard-read', 'clipboard-write'],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

// Drops files from disk at (x, y) of the viewport, as a drag from the desktop would.
export async function dropFiles(page: Page, files: string[], x: number, y: number): Promise<void> {
  const cdp = await page.context().newCDPSession(page);
  const data = { items: [], files, dragOperationsMask: 1 }; // 1 = copy
  for (const type of ['dragEnter', 'dragOver', 'drop'] as const)
    await cdp.send('Input.dispatchDragEvent', { type, x, y, data });
  await cdp.detach();
}

// The viewport point just inside the left edge of the first occurrence of `word` in an element's text.
export async function pointBefore(page: Page, selector: string, word: string): Promise<{ x: number; y: number }> {
  return page.evaluate(
    ([sel, w]) => {
      const root = document.querySelector(sel)!;
      const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const i = n.textContent!.indexOf(w);
        if (i < 0) continue;
        const r = document.createRange();
        r.setStart(n, i);
        r.setEnd(n, i + 1);
        const rect = r.getBoundingClientRect();
        return { x: rect.left + 1, y: rect.top + rect.height / 2 };
      }
      throw new Error(`'${w}' is not in ${sel}`);
    },
    [selector, word] as const,
  );
}
