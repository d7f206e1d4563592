// Parses the output of the VCL compiler (VCC), as varnishd 7.1 returns it for a failed vcl.inline:
//
//   Message from VCC-compiler:
//   Regexp compilation error:
//
//   lookbehind assertion is not fixed length
//
//   ('<vcl.inline>' Line 4 Pos 19) -- (Pos 17)
//       if (req.url ~ "(?<=a+)b") { return (pass); }
//   ------------------------------------------------
//
//   Running VCC-compiler failed, exited with 2
//   VCL compilation failed
import type { CompilerReport } from './errors.js';

const LOCATION = /^\('[^']*' Line (\d+) Pos (\d+)\)/;
const FRAME_LINES = new Set(['Message from VCC-compiler:', 'VCL compilation failed']);
const EXIT_LINE = /^Running VCC-compiler failed/;

/** Returns the message, line and position of a compiler output; line and position stay unset when the output names none. */
export function parseCompilerOutput(output: string): CompilerReport {
  const lines = output.split('\n').map((line) => line.trimEnd());
  const locationIndex = lines.findIndex((line) => LOCATION.test(line));

  const messageLines = (locationIndex >= 0 ? lines.slice(0, locationIndex) : lines)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !FRAME_LINES.has(line) && !EXIT_LINE.test(line));
  const report: CompilerReport = {
    message: messageLines.join(' ') || output.trim(),
    output,
  };
  if (locationIndex < 0) return report;

  const match = LOCATION.exec(lines[locationIndex] ?? '');
  report.line = Number(match?.[1]);
  report.position = Number(match?.[2]);
  const source = lines[locationIndex + 1];
  if (source !== undefined && source.trim() !== '') report.source = source;
  return report;
}
