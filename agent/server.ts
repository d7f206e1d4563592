// HTTP API of the agent that runs beside one varnishd and drives it through the admin port.
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Logger } from '@aws-lambda-powertools/logger';
import { VarnishUnavailableError, VclCompileError } from '../functions/domain/errors.js';
import { CliStatus, VarnishAdminClient } from './admin-client.js';

export interface AgentServerOptions {
  /** Bearer token that every request except `GET /v1/health` must carry. */
  token: string;
  admin: { host: string; port: number; secret: Buffer; commandTimeoutMs?: number };
  /** Listen address. Default 127.0.0.1. */
  host?: string;
  /** Listen port; 0 or undefined picks a free port. */
  port?: number;
  logger?: Logger;
}

export interface AgentServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export const MAX_BODY_BYTES = 4 * 1024 * 1024;
const VCL_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,99}$/;
const VCL_NAME_RULE =
  'must start with a letter and contain only letters, digits, _ and -, at most 100 characters';
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const VAAS_PREFIX = 'vaas-';

/** RFC 9110 reason phrases that differ from Node's STATUS_CODES, which still uses RFC 7231's. */
const NEWER_REASON_PHRASES: Record<number, string> = {
  413: 'Content Too Large',
  422: 'Unprocessable Content',
};

/** An error that maps to one problem+json response. */
class HttpProblem extends Error {
  constructor(
    readonly status: number,
    detail: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(detail);
  }

  /** The reason phrase, which RFC 9457 recommends as the title for the problem type `about:blank`. */
  get title(): string {
    return NEWER_REASON_PHRASES[this.status] ?? STATUS_CODES[this.status] ?? 'Error';
  }
}

type Handler = (request: IncomingMessage, body: () => Promise<Record<string, unknown>>) => Promise<Reply>;
type Reply = { status: number; body?: unknown };

export async function startAgentServer(options: AgentServerOptions): Promise<AgentServer> {
  const logger = options.logger ?? new Logger({ serviceName: 'vaas-agent' });
  const admin = new VarnishAdminClient(options.admin);
  const serialize = createSerialQueue();
  const tokenDigest = sha256(options.token);
  const routes = createRoutes(admin, serialize, logger);

  const server = createServer((request, response) => {
    const requestId = requestIdOf(request);
    const started = Date.now();
    response.setHeader('X-Request-Id', requestId);

    handleRequest(request, response, routes, tokenDigest)
      .catch((error: unknown) => sendError(response, error, logger, requestId))
      .finally(() => {
        logger.info('request finished', {
          requestId,
          method: request.method,
          path: request.url,
          status: response.statusCode,
          durationMs: Date.now() - started,
        });
      });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });

  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  logger.info('agent started', { url: `http://${host}:${port}`, admin: admin.address });

  return {
    url: `http://${host}:${port}`,
    port,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      admin.close();
      logger.info('agent stopped', { port });
    },
  };
}

function createRoutes(admin: VarnishAdminClient, serialize: SerialQueue, logger: Logger) {
  const listVcls: Handler = async () => ({
    status: 200,
    body: { items: await serialize(() => admin.listVcls()) },
  });

  const loadVcl: Handler = async (_request, readBody) => {
    const body = await readBody();
    const name = validName(body.name);
    const vcl = body.vcl;
    if (typeof vcl !== 'string' || vcl.trim() === '' || vcl.includes('\u0000')) {
      throw fieldProblem('vcl', 'must be a non-empty string without NUL characters');
    }

    await serialize(async () => {
      const loaded = await admin.listVcls();
      if (loaded.some((item) => item.name === name)) {
        throw new HttpProblem(409, `a VCL named ${name} is already loaded`);
      }
      await admin.loadInline(name, vcl);
    });
    logger.info('VCL loaded', { vclName: name, bytes: Buffer.byteLength(vcl) });
    return { status: 201, body: { name, status: 'available' } };
  };

  const useVcl: Handler = async (_request, readBody) => {
    const name = validName((await readBody()).name);

    const discarded = await serialize(async () => {
      const response = await admin.run(`vcl.use ${name}`);
      if (response.status === CliStatus.cantHappen) {
        throw new HttpProblem(404, `no VCL named ${name} is loaded`);
      }
      admin.expectOk('vcl.use', response);
      return discardOlderVcls(admin, name, logger);
    });

    logger.info('VCL activated', { vclName: name, discarded });
    return { status: 200, body: { name, status: 'active', discarded } };
  };

  const discardVcl: Handler = async (request) => {
    const name = pathOf(request).slice('/v1/vcl/'.length);
    if (!VCL_NAME.test(name)) {
      throw new HttpProblem(404, 'no VCL with that name is loaded');
    }

    const response = await serialize(() => admin.discard(name));
    if (response.status === CliStatus.cantHappen) {
      throw new HttpProblem(404, `no VCL named ${name} is loaded`);
    }
    if (response.status === CliStatus.refused) {
      throw new HttpProblem(409, response.body.trim());
    }
    admin.expectOk('vcl.discard', response);
    logger.info('VCL discarded', { vclName: name });
    return { status: 204 };
  };

  const health = async (): Promise<Reply> => {
    try {
      await serialize(() => admin.ping());
    } catch (error) {
      throw new HttpProblem(503, (error as Error).message);
    }
    return { status: 200, body: { status: 'ok' } };
  };

  return { listVcls, loadVcl, useVcl, discardVcl, health };
}

/**
 * Discards every available `vaas-` VCL except the active one and returns their names. VCLs that
 * varnishd keeps (300, still in use) stay. A failure here only logs, because vcl.use succeeded.
 */
async function discardOlderVcls(
  admin: VarnishAdminClient,
  active: string,
  logger: Logger,
): Promise<string[]> {
  const discarded: string[] = [];
  try {
    const candidates = (await admin.listVcls()).filter(
      (item) => item.name.startsWith(VAAS_PREFIX) && item.name !== active && item.status === 'available',
    );

    for (const { name } of candidates) {
      const response = await admin.discard(name);
      if (response.status === CliStatus.ok) {
        discarded.push(name);
      } else {
        logger.info('VCL not discarded', {
          vclName: name,
          status: response.status,
          reason: response.body.trim(),
        });
      }
    }
  } catch (error) {
    logger.warn('discard of older VCLs failed; the next vcl.use retries it', {
      activeVcl: active,
      error: (error as Error).message,
    });
  }
  return discarded;
}

async function handleRequest(
  request: IncomingMessage,
  response: ServerResponse,
  routes: ReturnType<typeof createRoutes>,
  tokenDigest: Buffer,
): Promise<void> {
  const path = pathOf(request);
  const method = request.method ?? 'GET';
  const readBody = () => readJsonBody(request);

  if (path === '/v1/health') {
    const reply = await dispatch(method, { GET: routes.health }, request, readBody);
    return sendJson(response, reply);
  }

  if (!isAuthorized(request.headers.authorization, tokenDigest)) {
    response.setHeader('WWW-Authenticate', 'Bearer');
    throw new HttpProblem(401, 'missing or invalid bearer token');
  }

  let reply: Reply;
  if (path === '/v1/vcl') {
    reply = await dispatch(method, { GET: routes.listVcls, POST: routes.loadVcl }, request, readBody);
  } else if (path === '/v1/vcl/active') {
    reply = await dispatch(method, { PUT: routes.useVcl, DELETE: routes.discardVcl }, request, readBody);
  } else if (/^\/v1\/vcl\/[^/]+$/.test(path)) {
    reply = await dispatch(method, { DELETE: routes.discardVcl }, request, readBody);
  } else {
    throw new HttpProblem(404, `no resource at ${path}`);
  }
  sendJson(response, reply);
}

function dispatch(
  method: string,
  handlers: Record<string, Handler>,
  request: IncomingMessage,
  readBody: () => Promise<Record<string, unknown>>,
): Promise<Reply> {
  const handler = handlers[method];
  if (!handler) {
    const allowed = Object.keys(handlers).join(', ');
    throw new HttpProblem(405, `allowed methods: ${allowed}`, { allow: allowed });
  }
  return handler(request, readBody);
}

function isAuthorized(header: string | undefined, tokenDigest: Buffer): boolean {
  const match = /^Bearer +(\S+) *$/i.exec(header ?? '');
  if (!match?.[1]) {
    return false;
  }
  return timingSafeEqual(sha256(match[1]), tokenDigest);
}

async function readJsonBody(request: IncomingMessage): Promise<Record<string, unknown>> {
  const contentType = request.headers['content-type'];
  if (contentType !== undefined && !/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(contentType)) {
    throw new HttpProblem(415, 'the body must be application/json');
  }
  if (Number(request.headers['content-length'] ?? 0) > MAX_BODY_BYTES) {
    throw new HttpProblem(413, `the body exceeds ${MAX_BODY_BYTES} bytes`);
  }

  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) {
      throw new HttpProblem(413, `the body exceeds ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }

  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpProblem(400, 'the body is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new HttpProblem(400, 'the body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

function validName(value: unknown): string {
  if (typeof value !== 'string' || !VCL_NAME.test(value)) {
    throw fieldProblem('name', VCL_NAME_RULE);
  }
  return value;
}

function fieldProblem(field: string, message: string): HttpProblem {
  return new HttpProblem(422, `${field}: ${message}`, { errors: [{ field, message }] });
}

function sendError(response: ServerResponse, error: unknown, logger: Logger, requestId: string): void {
  let problem: HttpProblem;
  if (error instanceof HttpProblem) {
    problem = error;
  } else if (error instanceof VclCompileError) {
    problem = new HttpProblem(422, error.message);
  } else if (error instanceof VarnishUnavailableError) {
    problem = new HttpProblem(502, error.message);
    logger.error('varnishd admin command failed', { requestId, error: error.message });
  } else {
    problem = new HttpProblem(500, 'the agent failed to handle the request');
    logger.error('request failed', {
      requestId,
      error: error instanceof Error ? error.stack : String(error),
    });
  }

  if (typeof problem.extra.allow === 'string') {
    response.setHeader('Allow', problem.extra.allow);
  }

  // A request body left unread (a 413, or a route that never reads it) must not be parsed as the
  // next request on this connection, so the connection closes after the response.
  if (!response.req.complete) {
    response.setHeader('Connection', 'close');
    response.once('finish', () => response.req.destroy());
  }

  const { allow: _allow, ...extra } = problem.extra;
  const body = {
    type: 'about:blank',
    title: problem.title,
    status: problem.status,
    detail: problem.message,
    ...extra,
  };
  sendJson(response, { status: problem.status, body }, 'application/problem+json');
}

function sendJson(response: ServerResponse, reply: Reply, contentType = 'application/json'): void {
  if (response.headersSent) {
    return;
  }
  if (reply.body === undefined) {
    response.writeHead(reply.status).end();
    return;
  }
  const payload = JSON.stringify(reply.body);
  response.writeHead(reply.status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(payload),
  });
  response.end(payload);
}

function pathOf(request: IncomingMessage): string {
  return (request.url ?? '/').split('?', 1)[0] ?? '/';
}

function requestIdOf(request: IncomingMessage): string {
  const header = request.headers['x-request-id'];
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

type SerialQueue = <T>(task: () => Promise<T>) => Promise<T>;

/** Runs tasks one after another, because varnishd's CLI handles one command at a time. */
function createSerialQueue(): SerialQueue {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(task: () => Promise<T>): Promise<T> => {
    const result = tail.then(task);
    tail = result.catch(() => undefined);
    return result;
  };
}
