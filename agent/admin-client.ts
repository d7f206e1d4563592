// Client for the varnishd admin port (`-T`), the protocol that varnishadm speaks.
//
// Every response is a 13-byte header `"%-3d %-8u\n"` (status, body length in bytes), the body and
// one more "\n". On connect varnishd sends status 107 with a 32-character challenge. The client
// replies `auth <hex>` with the SHA-256 of challenge + "\n" + secret file bytes + challenge + "\n".
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { VarnishUnavailableError, VclCompileError } from '../functions/domain/errors.js';
import type { LoadedVcl } from '../functions/ports.js';

/** CLI status codes from varnishd's `vcli.h`. */
export const CliStatus = {
  syntax: 100,
  unknown: 101,
  cantHappen: 106,
  auth: 107,
  ok: 200,
  truncated: 201,
  refused: 300,
  comms: 400,
  closed: 500,
} as const;

export interface AdminResponse {
  status: number;
  body: string;
}

export interface AdminClientOptions {
  host: string;
  port: number;
  /** Raw bytes of the file given to varnishd's `-S`, trailing newline included. */
  secret: Buffer;
  /** Time allowed for one command, connecting and authenticating included. Default 30 s. */
  commandTimeoutMs?: number;
}

const HEADER_LENGTH = 13;
const VCL_NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;

/**
 * Runs commands on one varnishd over one connection, one command at a time.
 *
 * The connection opens on the first command. The client drops the connection after a syntax error
 * (100), an unknown command (101), a timeout or a close, because later responses may no longer
 * match the commands. The next command then reconnects.
 */
export class VarnishAdminClient {
  readonly address: string;
  private readonly commandTimeoutMs: number;
  private socket: Socket | undefined;
  private buffer = Buffer.alloc(0);
  private waiter: ((response: AdminResponse | Error) => void) | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: AdminClientOptions) {
    this.address = `${options.host.includes(':') ? `[${options.host}]` : options.host}:${options.port}`;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 30_000;
  }

  /** Sends one command line and returns varnishd's response, whatever its status. */
  async run(command: string): Promise<AdminResponse> {
    if (/[\r\n]/.test(command)) {
      throw new Error('an admin command must be a single line');
    }
    return this.enqueue(`${command}\n`);
  }

  async ping(): Promise<void> {
    const response = await this.run('ping');
    this.expectOk('ping', response);
  }

  async listVcls(): Promise<LoadedVcl[]> {
    const response = await this.run('vcl.list -j');
    this.expectOk('vcl.list', response);
    return parseVclList(response.body);
  }

  /**
   * Compiles and loads a VCL with `vcl.inline NAME << TOKEN`.
   * Throws VclCompileError with varnishd's message when the VCL does not compile.
   */
  async loadInline(name: string, vcl: string): Promise<void> {
    assertVclName(name);
    const token = heredocTokenFor(vcl);
    const body = vcl.endsWith('\n') ? vcl : `${vcl}\n`;
    const response = await this.enqueue(`vcl.inline ${name} << ${token}\n${body}${token}\n`);

    if (response.status === CliStatus.cantHappen) {
      throw new VclCompileError(response.body.trim());
    }
    this.expectOk('vcl.inline', response);
  }

  async use(name: string): Promise<void> {
    assertVclName(name);
    this.expectOk('vcl.use', await this.run(`vcl.use ${name}`));
  }

  /** Runs `vcl.discard` and returns the response, so callers can tell 106 (unknown) and 300 (in use). */
  async discard(name: string): Promise<AdminResponse> {
    assertVclName(name);
    return this.run(`vcl.discard ${name}`);
  }

  close(): void {
    this.dropConnection(new VarnishUnavailableError(`admin connection to ${this.address} closed`));
  }

  /** Throws VarnishUnavailableError with the command, the status and varnishd's text unless 200. */
  expectOk(command: string, response: AdminResponse): void {
    if (response.status !== CliStatus.ok) {
      throw new VarnishUnavailableError(
        `${command} on ${this.address} failed with status ${response.status}: ${response.body.trim()}`,
      );
    }
  }

  private enqueue(payload: string): Promise<AdminResponse> {
    const result = this.queue.then(() => this.exchange(payload));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async exchange(payload: string): Promise<AdminResponse> {
    const deadline = Date.now() + this.commandTimeoutMs;
    try {
      const socket = this.socket ?? (await this.openConnection(deadline));
      socket.write(payload);
      const response = await this.readResponse(deadline);

      if (response.status === CliStatus.syntax || response.status === CliStatus.unknown) {
        this.dropConnection(new VarnishUnavailableError('connection reset after a syntax error'));
      }
      if (response.status === CliStatus.closed) {
        this.dropConnection(new VarnishUnavailableError(`varnishd at ${this.address} closed the connection`));
      }
      return response;
    } catch (error) {
      this.dropConnection(error as Error);
      throw error;
    }
  }

  private async openConnection(deadline: number): Promise<Socket> {
    const socket = connect({ host: this.options.host, port: this.options.port });
    this.socket = socket;
    this.buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.onSocketEnd(socket, error));
    socket.on('close', () => this.onSocketEnd(socket, undefined));

    const banner = await this.readResponse(deadline);
    if (banner.status === CliStatus.auth) {
      socket.write(`auth ${authResponse(banner.body, this.options.secret)}\n`);
      const auth = await this.readResponse(deadline);
      if (auth.status !== CliStatus.ok) {
        throw new VarnishUnavailableError(
          `authentication on ${this.address} failed with status ${auth.status}: check the secret file`,
        );
      }
    } else if (banner.status !== CliStatus.ok) {
      throw new VarnishUnavailableError(
        `unexpected banner from ${this.address}: status ${banner.status} ${banner.body.trim()}`,
      );
    }
    return socket;
  }

  private readResponse(deadline: number): Promise<AdminResponse> {
    try {
      const parsed = this.takeResponse();
      if (parsed) {
        return Promise.resolve(parsed);
      }
    } catch (error) {
      return Promise.reject(error);
    }

    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.waiter = undefined;
          reject(new VarnishUnavailableError(`admin command on ${this.address} timed out`));
        },
        Math.max(0, deadline - Date.now()),
      );

      this.waiter = (result) => {
        clearTimeout(timer);
        this.waiter = undefined;
        if (result instanceof Error) {
          reject(result);
        } else {
          resolve(result);
        }
      };
    });
  }

  private onData(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    if (!this.waiter) {
      return;
    }

    try {
      const parsed = this.takeResponse();
      if (parsed) {
        this.waiter(parsed);
      }
    } catch (error) {
      this.dropConnection(error as Error);
    }
  }

  /** Removes one complete response from the buffer, or returns undefined while it is incomplete. */
  private takeResponse(): AdminResponse | undefined {
    if (this.buffer.length < HEADER_LENGTH) {
      return undefined;
    }

    const header = this.buffer.subarray(0, HEADER_LENGTH).toString('latin1');
    const match = /^(\d{3}) (\d+) *\n$/.exec(header);
    if (!match) {
      throw new VarnishUnavailableError(
        `invalid response header from ${this.address}: ${JSON.stringify(header)}`,
      );
    }

    const bodyLength = Number(match[2]);
    const end = HEADER_LENGTH + bodyLength + 1;
    if (this.buffer.length < end) {
      return undefined;
    }

    const body = this.buffer.subarray(HEADER_LENGTH, HEADER_LENGTH + bodyLength).toString('utf8');
    this.buffer = this.buffer.subarray(end);
    return { status: Number(match[1]), body };
  }

  private onSocketEnd(socket: Socket, error: Error | undefined): void {
    if (socket !== this.socket) {
      return;
    }
    const reason = error?.message ?? 'connection closed';
    this.dropConnection(new VarnishUnavailableError(`varnishd admin port ${this.address}: ${reason}`));
  }

  private dropConnection(reason: Error): void {
    const socket = this.socket;
    this.socket = undefined;
    this.buffer = Buffer.alloc(0);
    socket?.destroy();
    this.waiter?.(reason);
  }
}

/** Returns the `auth` argument for a 107 banner whose body starts with the challenge line. */
export function authResponse(bannerBody: string, secret: Buffer): string {
  const challenge = bannerBody.split('\n', 1)[0] ?? '';
  return createHash('sha256').update(`${challenge}\n`).update(secret).update(`${challenge}\n`).digest('hex');
}

/**
 * Returns a fresh random heredoc token that does not occur in the VCL.
 *
 * varnishd (vcli_serve.c in 7.1) ends the heredoc where the token is followed by "\r" or "\n",
 * also in the middle of a line, and the cut VCL may still compile. So the token must not occur
 * anywhere in the VCL, not only as a whole line.
 */
export function heredocTokenFor(vcl: string): string {
  for (;;) {
    const token = `VAAS_${randomBytes(16).toString('hex')}`;
    if (!vcl.includes(token)) {
      return token;
    }
  }
}

/**
 * Returns the entries of a `-j` response, `[version, argv, timestamp, ...entries]`. Throws
 * VarnishUnavailableError naming the command when the body is not such an array.
 */
export function jsonEntries(command: string, body: string): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed)) {
    throw new VarnishUnavailableError(`${command} returned invalid JSON: ${body.slice(0, 200)}`);
  }
  return parsed.slice(3);
}

/** Parses `vcl.list -j`. */
export function parseVclList(body: string): LoadedVcl[] {
  const items: LoadedVcl[] = [];
  for (const entry of jsonEntries('vcl.list -j', body)) {
    const { name, status } = (entry ?? {}) as { name?: unknown; status?: unknown };
    if (typeof name === 'string' && typeof status === 'string') {
      items.push({ name, status });
    }
  }
  return items;
}

function assertVclName(name: string): void {
  if (!VCL_NAME.test(name)) {
    throw new Error(`invalid VCL name ${JSON.stringify(name)}: must match ${VCL_NAME.source}`);
  }
}
