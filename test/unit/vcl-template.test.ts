import { describe, expect, it } from 'vitest';
import { routeCondition } from '../../functions/domain/vcl-condition.js';
import {
  blockSyntaxError,
  clusterVariables,
  placeholderNames,
  templateProblems,
  vclTemplateBlocks,
} from '../../functions/domain/vcl-template.js';

function issuePaths(result: { success: boolean; error?: { issues: { path: PropertyKey[] }[] } }): string[] {
  return (result.error?.issues ?? []).map((issue) => issue.path.map(String).join('.'));
}

describe('blockSyntaxError', () => {
  const wellFormed = [
    'set resp.http.X = "a";',
    'if (req.url ~ "^/a") {\n  return (pass);\n}',
    'set resp.http.X = "}";',
    'set resp.http.X = {"} { "quoted" }"};',
    'set resp.http.X = """}"""; # }',
    '// }\n/* } { */ set resp.http.X = "x";',
    '',
  ];

  for (const text of wellFormed) {
    it(`accepts ${JSON.stringify(text)}`, () => {
      expect(blockSyntaxError(text)).toBeUndefined();
    });
  }

  const broken: [string, RegExp][] = [
    ['}\nsub vcl_init {', /closes the subroutine early/],
    ['if (true) {', /is not closed/],
    ['set resp.http.X = "a;\n";', /string is not closed/],
    ['set resp.http.X = {"a;', /\{" string is not closed/],
    ['set resp.http.X = """a;', /""" string is not closed/],
    ['/* }', /comment is not closed/],
    ['C{ system("x"); }C', /inline C/],
  ];

  for (const [text, message] of broken) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      expect(blockSyntaxError(text)).toMatch(message);
    });
  }

  it('names the line of the problem', () => {
    expect(blockSyntaxError('set a = 1;\n\n}')).toMatch(/^line 3:/);
  });
});

describe('placeholders', () => {
  it('lists names in order of first use', () => {
    expect(placeholderNames('{{ b }} {{a}} {{  b  }}')).toEqual(['b', 'a']);
  });

  it('reports a variable a cluster lacks', () => {
    const problems = templateProblems({ blocks: { deliver: '"{{ env }}" "{{ team }}"' } }, { env: 'prod' });

    expect(problems).toEqual([{ block: 'deliver', variable: 'team', message: 'variable team is undefined' }]);
  });

  it('reports a value that closes the block', () => {
    const problems = templateProblems({ blocks: { deliver: 'set resp.http.X = {{ v }};' } }, { v: '1; }' });

    expect(problems).toHaveLength(1);
    expect(problems[0]?.message).toMatch(/closes the subroutine early/);
  });

  it('accepts a template whose variables are all defined', () => {
    expect(templateProblems({ blocks: { recv: 'set req.http.X = "{{ v }}";' } }, { v: 'x' })).toEqual([]);
  });
});

describe('vclTemplateBlocks schema', () => {
  it('rejects an unknown block name', () => {
    expect(issuePaths(vclTemplateBlocks.safeParse({ init: 'x' }))).toEqual(['init']);
  });

  it('rejects a malformed placeholder', () => {
    const result = vclTemplateBlocks.safeParse({ deliver: 'set resp.http.X = "{{ bad-name }}";' });

    expect(issuePaths(result)).toEqual(['deliver']);
  });

  it('rejects a block that leaves its subroutine', () => {
    expect(issuePaths(vclTemplateBlocks.safeParse({ recv: '} sub vcl_init { }' }))).toEqual(['recv']);
  });

  it('rejects a NUL character', () => {
    const paths = issuePaths(vclTemplateBlocks.safeParse({ recv: 'set req.http.X = "a";\u0000' }));
    expect([...new Set(paths)]).toEqual(['recv']);
  });

  it('accepts tabs and CRLF line breaks', () => {
    expect(vclTemplateBlocks.safeParse({ recv: 'if (true) {\r\n\treturn (pass);\r\n}' }).success).toBe(true);
  });
});

describe('clusterVariables schema', () => {
  it('rejects a value with a double quote', () => {
    expect(issuePaths(clusterVariables.safeParse({ env: 'a"b' }))).toEqual(['env']);
  });

  it('rejects a value with a line break', () => {
    expect(issuePaths(clusterVariables.safeParse({ env: 'a\nb' }))).toEqual(['env']);
  });

  it('rejects an invalid name', () => {
    expect(issuePaths(clusterVariables.safeParse({ '1env': 'a', 'e-v': 'b' }))).toEqual(['1env', 'e-v']);
  });

  it('accepts names with underscores', () => {
    expect(clusterVariables.safeParse({ _env: 'a', Env_2: 'b' }).success).toBe(true);
  });
});

describe('routeCondition schema', () => {
  it('requires a name for a header', () => {
    const result = routeCondition.safeParse({ all: [{ field: 'header', operator: 'equals', value: 'x' }] });

    expect(issuePaths(result)).toEqual(['all.0.name']);
  });

  it('rejects a name for the url', () => {
    const result = routeCondition.safeParse({
      all: [{ field: 'url', name: 'x', operator: 'equals', value: 'x' }],
    });

    expect(issuePaths(result)).toEqual(['all.0.name']);
  });

  it('rejects a header name outside the VCL subset', () => {
    const result = routeCondition.safeParse({
      all: [{ field: 'header', name: 'X.Y', operator: 'equals', value: 'x' }],
    });

    expect(issuePaths(result)).toEqual(['all.0.name']);
  });

  it('rejects an invalid regular expression', () => {
    const result = routeCondition.safeParse({ any: [{ field: 'url', operator: 'matches', value: '(' }] });

    expect(issuePaths(result)).toEqual(['any.0.value']);
  });

  it('accepts a regex character in an equals value', () => {
    const result = routeCondition.safeParse({ any: [{ field: 'url', operator: 'equals', value: '(' }] });

    expect(result.success).toBe(true);
  });

  it('requires exactly one of all and any', () => {
    expect(issuePaths(routeCondition.safeParse({}))).toEqual(['all']);
    expect(issuePaths(routeCondition.safeParse({ all: [], any: [] }))).toContain('all');
  });
});

describe('blockSyntaxError escapes', () => {
  it('rejects a lone carriage return that would end a comment', () => {
    const block = '# harmless comment\r}\rsub vcl_recv {\rreturn (synth(299, "escaped"));';
    expect(blockSyntaxError(block)).toMatch(/closes the subroutine early|control characters/);
  });

  it('reads CRLF line endings as LF', () => {
    expect(blockSyntaxError('# comment\r\nset resp.http.x = "1";\r\n')).toBeUndefined();
  });

  it('reads a BLOB literal as one token', () => {
    const block = 'set resp.body = :AA//:; } sub vcl_recv { return (synth(297, "blob escape"));';
    expect(blockSyntaxError(block)).toMatch(/closes the subroutine early/);
  });

  it('rejects include and import', () => {
    expect(blockSyntaxError('include "/etc/passwd";')).toMatch(/include and import/);
    expect(blockSyntaxError('import std;')).toMatch(/include and import/);
    expect(blockSyntaxError('set resp.http.x-include = "1";')).toBeUndefined();
  });

  it('rejects other control characters', () => {
    expect(blockSyntaxError('set resp.http.x = "1";\u000b')).toMatch(/control characters/);
  });
});
