// Runs agent/ssm/apply-vcl.sh as one AWS-RunShellScript command per VarnishAgent call. The command
// runner is a parameter: ssm-transport.ts sends the commands through SSM, the tests run them with sh.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { VarnishUnavailableError, VclCompileError } from '../domain/errors.js';
import type { LoadedVcl, VarnishAgent } from '../ports.js';
import { scriptInspection } from './ssm-inspect.js';

/** Exit statuses of apply-vcl.sh; its header describes each one. */
export const ScriptExit = {
  ok: 0,
  usage: 64,
  compileError: 65,
  notFound: 66,
  exists: 67,
  unavailable: 69,
  damaged: 70,
  expired: 75,
} as const;

/** Admin endpoint of varnishd for varnishadm on the host: its work directory, or its admin address and secret file. */
export type AdminTarget = { workDir: string } | { address: string; secretFile: string };

/** The outcome of one command, as GetCommandInvocation reports it. */
export interface CommandResult {
  /** `Success`, `Failed`, `TimedOut`, `Cancelled` or another SSM invocation status. */
  status: string;
  /** SSM's StatusDetails, for example `DeliveryTimedOut` or `Undeliverable`. */
  details?: string;
  /** The script's exit status; -1 when it did not run. */
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs the lines of one AWS-RunShellScript `commands` parameter; `comment` describes the call. */
export type CommandRunner = (commands: string[], comment: string) => Promise<CommandResult>;

export interface ScriptAgentOptions {
  /** Text of apply-vcl.sh, or a function that returns it on first use. */
  script: string | (() => string);
  /** Names the host in error messages, for example `instance i-0123456789abcdef0`. */
  target: string;
  admin?: AdminTarget | undefined;
  /** Maximum seconds for one command. apply-vcl.sh exits without changes when it starts later. */
  timeoutSeconds: number;
  /** Maximum JSON size of one commands parameter, in bytes. Default DEFAULT_MAX_COMMAND_BYTES. */
  maxCommandBytes?: number | undefined;
  /** Directory on the host for VCL parts. Default: /var/lib/vaas-ssm/staging, set in apply-vcl.sh. */
  stagingDir?: string | undefined;
  now?: (() => Date) | undefined;
}

/**
 * Maximum JSON size of the commands parameter. SSM documents may hold 64 KB, and that quota also
 * counts the parameters given at run time (CreateDocument API reference, Content). The margin is for
 * the AWS-RunShellScript document itself and the other parameters.
 * NOTE: the margin is an estimate; AWS does not document how it counts the parameters.
 */
export const DEFAULT_MAX_COMMAND_BYTES = 48 * 1024;

/** Environment variable with the path of apply-vcl.sh, for bundles that keep it elsewhere. */
export const APPLY_VCL_SCRIPT_ENV = 'VAAS_APPLY_VCL_SCRIPT';

const VCL_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,99}$/;
const BASE64_LINE_LENGTH = 76;

/** Returns an agent whose calls run apply-vcl.sh through `run`. */
export function createScriptAgent(options: ScriptAgentOptions, run: CommandRunner): VarnishAgent {
  const maxBytes = options.maxCommandBytes ?? DEFAULT_MAX_COMMAND_BYTES;

  const commandsFor = (args: string[], input?: string[]): string[] => {
    const script = typeof options.script === 'function' ? options.script() : options.script;
    return buildRunShellScriptCommands(script, [...globalArgs(options), ...args], input);
  };

  const call = async (args: string[], input?: string[]): Promise<CommandResult> => {
    const commands = commandsFor(args, input);
    if (commandBytes(commands) > maxBytes) {
      throw new VarnishUnavailableError(
        `the ${args[0]} command for ${options.target} exceeds ${maxBytes} bytes: raise maxCommandBytes`,
      );
    }
    return run(commands, `vaas apply-vcl ${args.slice(0, 2).join(' ')}`);
  };

  const expectOk = (action: string, result: CommandResult): void => {
    if (result.status !== 'Success' || result.exitCode !== ScriptExit.ok) {
      throw failure(options.target, action, result);
    }
  };

  return {
    ...scriptInspection(options.target, (args) => call(args), expectOk),

    async listVcls(): Promise<LoadedVcl[]> {
      const result = await call(['list']);
      expectOk('list', result);
      return parseVclList(result.stdout, options.target);
    },

    async loadVcl(name: string, vcl: string): Promise<void> {
      assertVclName(name);
      const payload = chunk(gzipSync(Buffer.from(vcl, 'utf8')).toString('base64'), BASE64_LINE_LENGTH);
      const loadArgs = ['load', name, '--gzip-base64', '--sha256', sha256(vcl)];

      let result: CommandResult;
      if (commandBytes(commandsFor(loadArgs, payload)) <= maxBytes) {
        result = await call(loadArgs, payload);
      } else {
        const uploadId = randomBytes(12).toString('hex');
        const parts = splitPayload(
          payload,
          maxBytes - commandBytes(commandsFor(['stage', uploadId, '999999'], [])),
        );
        for (const [index, part] of parts.entries()) {
          expectOk(`stage part ${index} of ${name}`, await call(['stage', uploadId, String(index)], part));
        }
        result = await call([...loadArgs, '--staged', uploadId, '--parts', String(parts.length)]);
      }

      if (result.exitCode === ScriptExit.compileError) {
        throw new VclCompileError(result.stdout.trim() || result.stderr.trim() || 'the VCL does not compile');
      }
      expectOk(`load ${name}`, result);
    },

    async useVcl(name: string): Promise<void> {
      assertVclName(name);
      expectOk(`use ${name}`, await call(['use', name]));
    },

    /** Discards a VCL; a VCL that varnishd does not know counts as discarded. */
    async discardVcl(name: string): Promise<void> {
      assertVclName(name);
      const result = await call(['discard', name]);
      if (result.status === 'Failed' && result.exitCode === ScriptExit.notFound) {
        return;
      }
      expectOk(`discard ${name}`, result);
    },
  };
}

/**
 * Returns the lines of the AWS-RunShellScript `commands` parameter that write apply-vcl.sh to a
 * private temporary directory, run it with `args` and `input` as stdin, and exit with its status.
 * SSM joins the lines with "\n" and runs them with sh. Heredoc markers are quoted, so the shell
 * expands nothing inside, and fresh, so no script or input line can end a heredoc early. Every
 * argument is single-quoted.
 */
export function buildRunShellScriptCommands(script: string, args: string[], input?: string[]): string[] {
  const scriptLines = script.replace(/\n$/, '').split('\n');
  const scriptMarker = freshMarker('VAAS_SCRIPT_', scriptLines);
  const lines = [
    'vaas_dir=$(mktemp -d) || exit 70',
    `cat >"$vaas_dir/apply-vcl.sh" <<'${scriptMarker}' || { rm -rf "$vaas_dir"; exit 70; }`,
    ...scriptLines,
    scriptMarker,
  ];

  const runScript = `sh "$vaas_dir/apply-vcl.sh" ${args.map(shellQuote).join(' ')}`;
  if (input === undefined) {
    lines.push(`${runScript} </dev/null`);
  } else {
    const inputMarker = freshMarker('VAAS_INPUT_', input);
    lines.push(`${runScript} <<'${inputMarker}'`, ...input, inputMarker);
  }

  lines.push('vaas_status=$?', 'rm -rf "$vaas_dir"', 'exit "$vaas_status"');
  return lines;
}

/** Reads apply-vcl.sh from $VAAS_APPLY_VCL_SCRIPT, from the Lambda task root, or from this repository. */
export function readApplyVclScript(): string {
  const candidates = scriptPaths();
  for (const path of candidates) {
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw error;
      }
    }
  }
  throw new Error(
    `apply-vcl.sh not found at ${candidates.join(', ')}: copy agent/ssm/apply-vcl.sh next to the bundle or set ${APPLY_VCL_SCRIPT_ENV}`,
  );
}

function scriptPaths(): string[] {
  const paths: string[] = [];
  const fromEnvironment = process.env[APPLY_VCL_SCRIPT_ENV];
  if (fromEnvironment) {
    paths.push(fromEnvironment);
  }
  if (process.env.LAMBDA_TASK_ROOT) {
    paths.push(join(process.env.LAMBDA_TASK_ROOT, 'apply-vcl.sh'));
  }
  try {
    paths.push(fileURLToPath(new URL('../../agent/ssm/apply-vcl.sh', import.meta.url)));
  } catch {
    // A CommonJS bundle has no import.meta.url; the paths above still apply.
  }
  return paths;
}

function globalArgs(options: ScriptAgentOptions): string[] {
  const now = options.now?.() ?? new Date();
  const deadline = Math.floor(now.getTime() / 1000) + Math.ceil(options.timeoutSeconds);
  const args = ['-t', String(Math.ceil(options.timeoutSeconds)), '--not-after', String(deadline)];

  if (options.admin && 'workDir' in options.admin) {
    args.push('-n', options.admin.workDir);
  } else if (options.admin) {
    args.push('-T', options.admin.address, '-S', options.admin.secretFile);
  }
  if (options.stagingDir !== undefined) {
    args.push('--staging-dir', options.stagingDir);
  }
  return args;
}

/** Maps a failed command to VarnishUnavailableError with the SSM status, the exit status and stderr. */
function failure(target: string, action: string, result: CommandResult): VarnishUnavailableError {
  const status = result.details ? `${result.status} (${result.details})` : result.status;
  const output = (result.stderr.trim() || result.stdout.trim()).slice(-1000);
  return new VarnishUnavailableError(
    `${action} on ${target} failed: SSM status ${status}, exit status ${result.exitCode}${output ? `: ${output}` : ''}`,
  );
}

function parseVclList(stdout: string, target: string): LoadedVcl[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout.trim());
  } catch {
    parsed = undefined;
  }

  const valid =
    Array.isArray(parsed) &&
    parsed.every((item) => typeof item?.name === 'string' && typeof item?.status === 'string');
  if (!valid) {
    throw new VarnishUnavailableError(`${target} sent an unreadable VCL list: ${stdout.slice(0, 200)}`);
  }
  return (parsed as LoadedVcl[]).map(({ name, status }) => ({ name, status }));
}

/** Splits base64 lines into parts whose JSON size, at 3 bytes of quotes and comma per line, fits `capacity`. */
function splitPayload(lines: string[], capacity: number): string[][] {
  if (capacity < BASE64_LINE_LENGTH + 3) {
    throw new VarnishUnavailableError(`maxCommandBytes leaves no room for VCL parts next to apply-vcl.sh`);
  }

  const parts: string[][] = [];
  let current: string[] = [];
  let size = 0;
  for (const line of lines) {
    if (size + line.length + 3 > capacity) {
      parts.push(current);
      current = [];
      size = 0;
    }
    current.push(line);
    size += line.length + 3;
  }
  parts.push(current);
  return parts;
}

function assertVclName(name: string): void {
  if (!VCL_NAME.test(name)) {
    throw new Error(`invalid VCL name ${JSON.stringify(name)}: must match ${VCL_NAME.source}`);
  }
}

/** Returns the size in bytes of the commands parameter as the SendCommand request carries it. */
export function commandBytes(commands: string[]): number {
  return Buffer.byteLength(JSON.stringify(commands), 'utf8');
}

function freshMarker(prefix: string, lines: string[]): string {
  for (;;) {
    const marker = `${prefix}${randomBytes(16).toString('hex')}`;
    if (!lines.includes(marker)) {
      return marker;
    }
  }
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function chunk(text: string, size: number): string[] {
  const lines: string[] = [];
  for (let start = 0; start < text.length; start += size) {
    lines.push(text.slice(start, start + size));
  }
  return lines;
}
