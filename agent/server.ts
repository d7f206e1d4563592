// HTTP API of the agent that runs beside one varnishd and drives it through the admin port.
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Logger } from '@aws-lambda-powertools/logger';
import { CliStatus, VarnishAdminClient } from './admin-client.js';
import { type Handler, HttpProblem, type Reply, readJsonBody, sendError, sendJson } from './http.js';
import { createInspectRoutes, type SerialQueue } from './inspect.js';

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

const VCL_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,99}$/;
const VCL_NAME_RULE =
  'must start with a letter and contain only letters, digits, _ and -, at most 100 characters';
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const VAAS_PREFIX = 'vaas-';

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

  return { listVcls, loadVcl, useVcl, discardVcl, health, ...createInspectRoutes(admin, serialize, logger) };
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
    const handlers = { GET: routes.activeVcl, PUT: routes.useVcl, DELETE: routes.discardVcl };
    reply = await dispatch(method, handlers, request, readBody);
  } else if (path === '/v1/vcl/compile') {
    reply = await dispatch(method, { POST: routes.compileVcl }, request, readBody);
  } else if (path === '/v1/backends') {
    reply = await dispatch(method, { GET: routes.backends }, request, readBody);
  } else if (path === '/v1/purge') {
    reply = await dispatch(method, { POST: routes.purge }, request, readBody);
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

function validName(value: unknown): string {
  if (typeof value !== 'string' || !VCL_NAME.test(value)) {
    throw fieldProblem('name', VCL_NAME_RULE);
  }
  return value;
}

function fieldProblem(field: string, message: string): HttpProblem {
  return new HttpProblem(422, `${field}: ${message}`, { errors: [{ field, message }] });
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

/** Runs tasks one after another, because varnishd's CLI handles one command at a time. */
function createSerialQueue(): SerialQueue {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(task: () => Promise<T>): Promise<T> => {
    const result = tail.then(task);
    tail = result.catch(() => undefined);
    return result;
  };
}
