// docs/BENCHMARKS.md: one "## <name>" section per benchmark. Every benchmark records through here, so a section is
// rewritten or extended where it stands (not appended past the next one) and hand-written notes survive re-runs.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCHMARKS_MD = join(fileURLToPath(new URL('..', import.meta.url)), 'docs', 'BENCHMARKS.md');

const read = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n');
function write(file: string, md: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, md);
}

// Replaces the section `## name` (its text starts with that heading) or appends it; the old section's text from
// `notesMark` on is kept below the new one.
export function writeSection(name: string, section: string, o: { notesMark?: string; file?: string } = {}): void {
  const file = o.file ?? BENCHMARKS_MD;
  let md = read(file);
  const start = md.indexOf(`\n## ${name}\n`);
  if (start >= 0) {
    const next = md.indexOf('\n## ', start + 1);
    const old = md.slice(start + 1, next >= 0 ? next + 1 : md.length);
    const notes = o.notesMark && old.includes(o.notesMark) ? old.slice(old.indexOf(o.notesMark)).trimEnd() + '\n' : '';
    md = md.slice(0, start + 1) + section + (notes ? '\n' + notes : '') + (next >= 0 ? md.slice(next) : '');
  } else md = md.trimEnd() + '\n\n' + section;
  write(file, md);
}

// Adds `row` (one table line) at the end of the section `## name`, first creating the section with `intro` (the
// text under the heading, ending with the table's header lines) when there is none.
export function appendRow(name: string, intro: string, row: string, o: { file?: string } = {}): void {
  const file = o.file ?? BENCHMARKS_MD;
  const head = `## ${name}`;
  let md = read(file);
  if (!md.includes(`\n${head}\n`)) md = md.trimEnd() + `\n\n${head}\n\n` + intro;
  const start = md.indexOf(`\n${head}\n`) + 1;
  const next = md.indexOf('\n## ', start + head.length);
  const at = next < 0 ? md.length : next + 1;
  const before = md.slice(0, at).replace(/\n*$/, '\n');
  write(file, before + row + (next < 0 ? '' : '\n' + md.slice(at)));
}
