import { describe, expect, it } from 'vitest';
import { parseCompilerOutput } from '../../functions/domain/compiler-output.js';

// Outputs as varnishd 7.1 returned them for vcl.inline.
const REGEX_ERROR = [
  'Message from VCC-compiler:',
  'Regexp compilation error:',
  '',
  'lookbehind assertion is not fixed length',
  '',
  "('<vcl.inline>' Line 4 Pos 19) -- (Pos 17)",
  '    if (req.url ~ "(?<=a+)b") { return (pass); }',
  '------------------------------------------------',
  '',
  'Running VCC-compiler failed, exited with 2',
  'VCL compilation failed',
].join('\n');

const SYNTAX_ERROR = [
  'Message from VCC-compiler:',
  "Unknown token ';' when looking for STRING",
  '',
  "('<vcl.inline>' Line 4 Pos 22)",
  '    set req.http.x = ;',
  '---------------------#',
  '',
  'Running VCC-compiler failed, exited with 2',
  'VCL compilation failed',
].join('\n');

describe('parseCompilerOutput', () => {
  it('reads a regex error', () => {
    const report = parseCompilerOutput(REGEX_ERROR);

    expect(report.message).toBe('Regexp compilation error: lookbehind assertion is not fixed length');
    expect(report.line).toBe(4);
    expect(report.position).toBe(19);
    expect(report.source).toBe('    if (req.url ~ "(?<=a+)b") { return (pass); }');
    expect(report.output).toBe(REGEX_ERROR);
  });

  it('reads a syntax error', () => {
    const report = parseCompilerOutput(SYNTAX_ERROR);

    expect(report.message).toBe("Unknown token ';' when looking for STRING");
    expect(report.line).toBe(4);
    expect(report.position).toBe(22);
  });

  it('keeps output without a location whole', () => {
    const report = parseCompilerOutput(
      'Message from VCC-compiler:\nNo backends in VCL\nVCL compilation failed',
    );

    expect(report.message).toBe('No backends in VCL');
    expect(report.line).toBeUndefined();
    expect(report.position).toBeUndefined();
  });
});
