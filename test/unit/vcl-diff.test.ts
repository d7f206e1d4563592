import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { unifiedDiff } from '../../functions/services/vcl-diff.js';

const dir = mkdtempSync(join(tmpdir(), 'vaas-diff-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Returns GNU diff's unified output for the same inputs. */
function gnuDiff(before: string, after: string): string {
  writeFileSync(join(dir, 'a'), before);
  writeFileSync(join(dir, 'b'), after);
  try {
    execFileSync('diff', ['-u', '--label', 'A', '--label', 'B', join(dir, 'a'), join(dir, 'b')]);
    return '';
  } catch (error) {
    return (error as { stdout: Buffer }).stdout.toString();
  }
}

const lines = (count: number, change: (index: number) => string) =>
  `${Array.from({ length: count }, (_, index) => change(index)).join('\n')}\n`;

let hasDiff = true;
try {
  execFileSync('diff', ['--version']);
} catch {
  hasDiff = false;
}

describe.skipIf(!hasDiff)('unifiedDiff', () => {
  it.each([
    ['one changed line', 'a\nb\nc\n', 'a\nB\nc\n'],
    ['an added file', '', 'x\ny\n'],
    ['a removed file', 'x\n', ''],
    ['a missing final newline', 'a\nb', 'a\nb\n'],
    ['two distant hunks', lines(40, (i) => `l${i}`), lines(40, (i) => (i % 19 === 0 ? `L${i}` : `l${i}`))],
    ['insertions at both ends', lines(12, (i) => `${i + 1}`), `0\n${lines(12, (i) => `${i + 1}`)}13\n`],
  ])('matches diff -u for %s', (_case, before, after) => {
    expect(unifiedDiff(before, after, { from: 'A', to: 'B' })).toBe(gnuDiff(before, after));
  });

  it('returns an empty string for equal texts', () => {
    expect(unifiedDiff('a\n', 'a\n', { from: 'A', to: 'B' })).toBe('');
  });

  it('produces patches that apply', () => {
    const pick = (seed: number) =>
      lines(12, (i) => 'abcd'[(seed * 7 + i * i * 3 + (seed >> i)) % 4] as string).slice(0, 8 + (seed % 17));
    for (let seed = 0; seed < 50; seed++) {
      const before = pick(seed);
      const after = pick(seed + 101);
      writeFileSync(join(dir, 'a'), before);
      writeFileSync(join(dir, 'patch'), unifiedDiff(before, after, { from: 'A', to: 'B' }));
      execFileSync('patch', ['-s', '-o', join(dir, 'out'), join(dir, 'a'), join(dir, 'patch')]);

      expect(execFileSync('cat', [join(dir, 'out')]).toString()).toBe(after);
    }
  });

  it('replaces a long middle in full beyond the edit limit', () => {
    const before = lines(3000, (i) => `a${i}`);
    const after = lines(3000, (i) => `b${i}`);

    const diff = unifiedDiff(before, after, { from: 'A', to: 'B' });

    expect(diff.split('\n').filter((line) => line.startsWith('-a'))).toHaveLength(3000);
    expect(diff.split('\n').filter((line) => line.startsWith('+b'))).toHaveLength(3000);
  });
});
