// The benchmarks' one writer of docs/BENCHMARKS.md: a section is replaced where it stands with its notes kept, and a
// row goes to the end of its own section's table, not to the end of the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSection, appendRow } from '../../bench/record.ts';

const BOOTSTRAP = '## bootstrap\nintro\n\n| a |\n|---|\n| 1 |\n';
const NOTES = '<!-- notes -->\nkept words\n';
const MD = `# Benchmarks\n\n## engine\nold engine\n\n${BOOTSTRAP}\n## train\nold train\n${NOTES}`;

function scratch(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'mumu-bench-')), 'BENCHMARKS.md');
  writeFileSync(file, MD);
  return file;
}

test('writeSection: replaced in place, the notes below the marker kept; appended when new', () => {
  const file = scratch();
  writeSection('engine', '## engine\nnew engine\n', { file });
  writeSection('train', '## train\nnew train\n', { file, notesMark: '<!-- notes -->' });
  writeSection('ddp', '## ddp\nfirst\n', { file });
  const want = `# Benchmarks\n\n## engine\nnew engine\n\n${BOOTSTRAP}\n## train\nnew train\n\n${NOTES}\n## ddp\nfirst\n`;
  assert.equal(readFileSync(file, 'utf8'), want);
});

test('appendRow: the row ends its own section (not the file); a missing section is created with its intro', () => {
  const file = scratch();
  appendRow('bootstrap', 'unused intro\n', '| 2 |\n', { file });
  appendRow('generate', 'about\n\n| g |\n|---|\n', '| 9 |\n', { file });
  const md = readFileSync(file, 'utf8');
  assert.ok(md.includes('| 1 |\n| 2 |\n\n## train'), md);
  assert.ok(md.endsWith('kept words\n\n## generate\n\nabout\n\n| g |\n|---|\n| 9 |\n'), md);
});
