// Unified diff (the format of `diff -u`) between two texts, line by line, with Myers' O(ND)
// algorithm after trimming the common prefix and suffix.

type Op = { type: ' ' | '-' | '+'; line: string };

/**
 * Edits beyond which the diff stops searching for the shortest edit script and shows the changed
 * middle as removed and added in full. The search keeps O(D²) integers, so 2,000 edits take
 * about 16 MB.
 */
const MAX_EDITS = 2000;
const NO_NEWLINE = '\\ No newline at end of file';

/** Returns the unified diff from `before` to `after`, or an empty string when they are equal. */
export function unifiedDiff(
  before: string,
  after: string,
  labels: { from: string; to: string },
  context = 3,
): string {
  if (before === after) return '';

  const ops = diffLines(splitLines(before), splitLines(after));
  const output = [`--- ${labels.from}`, `+++ ${labels.to}`];
  for (const hunk of hunksOf(ops, context)) {
    output.push(hunk.header);
    for (const index of hunk.range) {
      const op = ops[index] as Op;
      if (op.line.endsWith('\n')) output.push(`${op.type}${op.line.slice(0, -1)}`, NO_NEWLINE);
      else output.push(`${op.type}${op.line}`);
    }
  }
  return `${output.join('\n')}\n`;
}

/**
 * Splits a text into lines. A last line without a newline keeps a "\n" at its end: no other line
 * contains one, so it differs from the same text with a newline, as in diff -u.
 */
function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  const last = lines.pop() as string;
  if (last !== '') lines.push(`${last}\n`);
  return lines;
}

function diffLines(a: string[], b: string[]): Op[] {
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }

  const keep = (line: string): Op => ({ type: ' ', line });
  return [
    ...a.slice(0, start).map(keep),
    ...shortestEdit(a.slice(start, endA), b.slice(start, endB)),
    ...a.slice(endA).map(keep),
  ];
}

/** Myers' greedy algorithm: trace[d] keeps the furthest x per diagonal k before step d. */
function shortestEdit(a: string[], b: string[]): Op[] {
  const n = a.length;
  const m = b.length;
  const replaceAll = (): Op[] => [
    ...a.map((line): Op => ({ type: '-', line })),
    ...b.map((line): Op => ({ type: '+', line })),
  ];
  if (n === 0 || m === 0) return replaceAll();

  const limit = Math.min(n + m, MAX_EDITS);
  const offset = limit + 1;
  const v = new Int32Array(2 * limit + 3);
  const trace: Int32Array[] = [];

  for (let d = 0; d <= limit; d++) {
    trace.push(v.slice(offset - d - 1, offset + d + 2));
    for (let k = -d; k <= d; k += 2) {
      const down = k === -d || (k !== d && (v[offset + k - 1] ?? 0) < (v[offset + k + 1] ?? 0));
      let x = down ? (v[offset + k + 1] ?? 0) : (v[offset + k - 1] ?? 0) + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) return backtrack(trace, a, b);
    }
  }
  return replaceAll();
}

function backtrack(trace: Int32Array[], a: string[], b: string[]): Op[] {
  const ops: Op[] = [];
  let x = a.length;
  let y = b.length;

  for (let d = trace.length - 1; d >= 0; d--) {
    const row = trace[d] as Int32Array;
    const at = (k: number) => row[k + d + 1] ?? 0;
    const k = x - y;
    const previousK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const previousX = at(previousK);
    const previousY = previousX - previousK;

    while (x > previousX && y > previousY) {
      ops.push({ type: ' ', line: a[x - 1] as string });
      x--;
      y--;
    }
    if (d > 0) {
      if (x === previousX) ops.push({ type: '+', line: b[previousY] as string });
      else ops.push({ type: '-', line: a[previousX] as string });
    }
    x = previousX;
    y = previousY;
  }
  return ops.reverse();
}

interface Hunk {
  header: string;
  range: number[];
}

/** Groups changes whose context overlaps into hunks with `@@ -start,count +start,count @@` headers. */
function hunksOf(ops: Op[], context: number): Hunk[] {
  const changed = ops.flatMap((op, index) => (op.type === ' ' ? [] : [index]));
  const hunks: Hunk[] = [];
  let first = 0;

  while (first < changed.length) {
    let last = first;
    while (
      last + 1 < changed.length &&
      (changed[last + 1] as number) - (changed[last] as number) <= 2 * context
    ) {
      last++;
    }
    const start = Math.max(0, (changed[first] as number) - context);
    const end = Math.min(ops.length - 1, (changed[last] as number) + context);
    hunks.push(hunkOf(ops, start, end));
    first = last + 1;
  }
  return hunks;
}

function hunkOf(ops: Op[], start: number, end: number): Hunk {
  let oldLine = 1;
  let newLine = 1;
  for (const op of ops.slice(0, start)) {
    if (op.type !== '+') oldLine++;
    if (op.type !== '-') newLine++;
  }

  const range = Array.from({ length: end - start + 1 }, (_, index) => start + index);
  const slice = ops.slice(start, end + 1);
  const oldCount = slice.filter((op) => op.type !== '+').length;
  const newCount = slice.filter((op) => op.type !== '-').length;
  // diff -u numbers an empty side from the line before it.
  const oldStart = oldCount === 0 ? oldLine - 1 : oldLine;
  const newStart = newCount === 0 ? newLine - 1 : newLine;
  // diff -u leaves out a count of 1.
  const span = (lineStart: number, count: number) => (count === 1 ? `${lineStart}` : `${lineStart},${count}`);
  return { header: `@@ -${span(oldStart, oldCount)} +${span(newStart, newCount)} @@`, range };
}
