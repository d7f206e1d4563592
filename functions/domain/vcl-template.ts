// VCL templates: VCL text that a team writes on purpose for named blocks, each rendered as an extra
// definition of a built-in subroutine, with `{{ name }}` placeholders filled from the cluster's
// variables. The text may not leave its subroutine: a lexer that follows VCL's strings and comments
// checks that every brace closes inside the block, and inline C is rejected.
import { z } from 'zod';
import type { VclTemplate } from './vcl-model.js';
import { NO_CONTROL_CHARS, VclRenderError, vclStringValue } from './vcl-values.js';

/** Block names, each the name of the built-in subroutine `vcl_<block>` that the block extends. */
export const vclBlockNames = [
  'recv',
  'hash',
  'hit',
  'miss',
  'pass',
  'pipe',
  'purge',
  'synth',
  'deliver',
  'backend_fetch',
  'backend_response',
  'backend_error',
] as const;

export type VclBlockName = (typeof vclBlockNames)[number];

const MAX_BLOCK_LENGTH = 16_384;
const MAX_VARIABLES = 100;
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}/y;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters other than tab, CR and LF are rejected.
const BLOCK_CONTROL_CHARS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

const blockText = z
  .string()
  .max(MAX_BLOCK_LENGTH)
  .refine(
    (text) => !BLOCK_CONTROL_CHARS.test(text),
    'must not contain control characters other than tab and line breaks',
  );

/** Schema of a template's blocks, block name to VCL text. Each block's syntax is checked with placeholders filled by `x`. */
export const vclTemplateBlocks = z.record(z.string(), blockText).superRefine((blocks, context) => {
  for (const [block, text] of Object.entries(blocks)) {
    if (!(vclBlockNames as readonly string[]).includes(block)) {
      context.addIssue({
        code: 'custom',
        path: [block],
        message: `is not a block name. Block names: ${vclBlockNames.join(', ')}`,
      });
      continue;
    }
    if (typeof text !== 'string') continue;
    const problem = placeholderProblem(text) ?? blockSyntaxError(fillPlaceholders(text, () => 'x'));
    if (problem) context.addIssue({ code: 'custom', path: [block], message: problem });
  }
});

/** A cluster's template variables: name to a value that may sit inside a VCL string. */
export const clusterVariables = z
  .record(z.string(), vclStringValue(1024))
  .superRefine((variables, context) => {
    const names = Object.keys(variables);
    if (names.length > MAX_VARIABLES) {
      context.addIssue({ code: 'custom', path: [], message: `must have at most ${MAX_VARIABLES} variables` });
    }
    for (const name of names.filter((candidate) => !VARIABLE_NAME.test(candidate))) {
      context.addIssue({
        code: 'custom',
        path: [name],
        message:
          'must start with a letter or _ and contain only letters, digits and _, at most 64 characters',
      });
    }
  });

/** Returns the variable names that a block's placeholders use, in order of first use. */
export function placeholderNames(text: string): string[] {
  const names: string[] = [];
  fillPlaceholders(text, (name) => {
    if (!names.includes(name)) names.push(name);
    return '';
  });
  return names;
}

/** A problem of a template with one cluster's variables: an undefined variable, or a block that breaks once filled. */
export interface TemplateProblem {
  block: string;
  /** The undefined variable, when that is the problem. */
  variable?: string;
  message: string;
}

/**
 * Checks a template against a cluster's variables: every placeholder needs a variable, and each
 * block with its placeholders filled must still stay inside its subroutine.
 */
export function templateProblems(
  template: Pick<VclTemplate, 'blocks'>,
  variables: Record<string, string>,
): TemplateProblem[] {
  const problems: TemplateProblem[] = [];
  for (const [block, text] of Object.entries(template.blocks)) {
    if (typeof text !== 'string') continue;
    const missing = placeholderNames(text).filter((name) => !Object.hasOwn(variables, name));
    for (const variable of missing) {
      problems.push({ block, variable, message: `variable ${variable} is undefined` });
    }
    if (missing.length > 0) continue;

    const error = blockSyntaxError(fillPlaceholders(text, (name) => variables[name] ?? ''));
    if (error) problems.push({ block, message: error });
  }
  return problems;
}

/**
 * Renders each non-empty block as `sub vcl_<block> { … }`, in the order of vclBlockNames. Throws
 * VclRenderError for an unknown block, a missing variable or a block that would leave its subroutine.
 */
export function renderTemplateSubs(template: VclTemplate, variables: Record<string, string>): string[] {
  const subs: string[] = [];
  for (const block of vclBlockNames) {
    const text = template.blocks[block];
    if (text === undefined || text.trim() === '') continue;

    const filled = fillPlaceholders(text, (name) => {
      const value = variables[name];
      if (value === undefined) {
        throw new VclRenderError(
          `template ${template.id} uses variable ${name}, which the cluster does not define`,
        );
      }
      if (!NO_CONTROL_CHARS.test(value) || value.includes('"')) {
        throw new VclRenderError(`variable ${name} contains a double quote or a control character`);
      }
      return value;
    });
    const error = placeholderProblem(text) ?? blockSyntaxError(filled);
    if (error) throw new VclRenderError(`template ${template.id} block ${block}: ${error}`);

    // The text goes in unchanged and unindented, because indenting would change multi-line strings.
    const body = filled.replace(/\r\n?/g, '\n').replace(/\s+$/, '');
    subs.push(`sub vcl_${block} {\n${body}\n}`);
  }
  for (const block of Object.keys(template.blocks)) {
    if (!(vclBlockNames as readonly string[]).includes(block)) {
      throw new VclRenderError(`template ${template.id} has an unknown block ${JSON.stringify(block)}`);
    }
  }
  return subs;
}

/** Replaces each `{{ name }}` with `replacement(name)`. A `{{` that starts no valid placeholder stays as it is. */
function fillPlaceholders(text: string, replacement: (name: string) => string): string {
  let result = '';
  let position = 0;
  for (let start = text.indexOf('{{'); start !== -1; start = text.indexOf('{{', position)) {
    PLACEHOLDER.lastIndex = start;
    const match = PLACEHOLDER.exec(text);
    if (!match) {
      result += text.slice(position, start + 2);
      position = start + 2;
      continue;
    }
    result += text.slice(position, start) + replacement(match[1] ?? '');
    position = start + match[0].length;
  }
  return result + text.slice(position);
}

/** Returns a message for the first `{{` that starts no valid placeholder, or undefined. */
function placeholderProblem(text: string): string | undefined {
  for (let start = text.indexOf('{{'); start !== -1; start = text.indexOf('{{', start + 2)) {
    PLACEHOLDER.lastIndex = start;
    const match = PLACEHOLDER.exec(text);
    if (!match) {
      return `line ${lineAt(text, start)}: {{ starts no placeholder; write {{ name }} with a variable name`;
    }
    start += match[0].length - 2;
  }
  return undefined;
}

/**
 * Returns a message when the text would not stay inside one subroutine body: a brace that closes
 * the subroutine or stays open, a string or comment left open, inline C, `include` or `import`,
 * or a control character other than tab. The lexer follows
 * varnishd 7.1's: `#` and `//` comments to the end of the line, `/* … *\/`, `"…"` on one line,
 * the long strings `{"…"}` and `"""…"""`, and BLOB literals `:base64:`.
 */
export function blockSyntaxError(rawText: string): string | undefined {
  // The renderer writes CRLF and CR as LF, so the check reads the text as varnishd will.
  const text = rawText.replace(/\r\n?/g, '\n');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the pattern exists to find control characters.
  const control = /[\u0000-\u0008\u000b-\u001f\u007f]/.exec(text);
  if (control)
    return `line ${lineAt(text, control.index)}: control characters other than tab are not allowed`;

  let depth = 0;
  let index = 0;
  while (index < text.length) {
    const rest = text.slice(index, index + 3);
    const line = () => lineAt(text, index);
    let end: number;

    if (rest.startsWith('#') || rest.startsWith('//')) {
      end = text.indexOf('\n', index);
      index = end === -1 ? text.length : end;
    } else if (rest.startsWith('/*')) {
      end = text.indexOf('*/', index + 2);
      if (end === -1) return `line ${line()}: a /* comment is not closed`;
      index = end + 2;
    } else if (rest.startsWith('C{')) {
      return `line ${line()}: inline C is not allowed`;
    } else if (rest.startsWith('{"')) {
      end = text.indexOf('"}', index + 2);
      if (end === -1) return `line ${line()}: a {" string is not closed`;
      index = end + 2;
    } else if (rest === '"""') {
      end = text.indexOf('"""', index + 3);
      if (end === -1) return `line ${line()}: a """ string is not closed`;
      index = end + 3;
    } else if (rest.startsWith('"')) {
      end = text.indexOf('"', index + 1);
      const lineEnd = text.indexOf('\n', index);
      if (end === -1 || (lineEnd !== -1 && lineEnd < end))
        return `line ${line()}: a string is not closed on its line`;
      index = end + 1;
    } else if (rest.startsWith(':') && BLOB_LITERAL.test(text.slice(index))) {
      index += (BLOB_LITERAL.exec(text.slice(index))?.[0] ?? ':').length;
    } else if (FORBIDDEN_KEYWORD.test(text.slice(index)) && !/[A-Za-z0-9_.-]/.test(text[index - 1] ?? '')) {
      return `line ${line()}: include and import are not allowed in a template block`;
    } else {
      if (rest.startsWith('{')) depth++;
      if (rest.startsWith('}')) depth--;
      if (depth < 0) return `line ${line()}: } closes the subroutine early`;
      index++;
    }
  }
  return depth > 0 ? 'a { is not closed' : undefined;
}

/** A VCL BLOB literal such as `:AAEC//8=:`, which varnishd reads as one token. */
const BLOB_LITERAL = /^:[A-Za-z0-9+/=]*:/;
/** `include` and `import` would read other files of the Varnish host into the VCL or its errors. */
const FORBIDDEN_KEYWORD = /^(include|import)(?![A-Za-z0-9_-])/;

function lineAt(text: string, index: number): number {
  let line = 1;
  for (
    let position = text.indexOf('\n');
    position !== -1 && position < index;
    position = text.indexOf('\n', position + 1)
  ) {
    line++;
  }
  return line;
}
