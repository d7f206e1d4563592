// HTTP helpers of the agent: problem+json responses (RFC 9457) and JSON request bodies.
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Logger } from '@aws-lambda-powertools/logger';
import { VarnishUnavailableError, VclCompileError } from '../functions/domain/errors.js';

export const MAX_BODY_BYTES = 4 * 1024 * 1024;

export type Reply = { status: number; body?: unknown };

/** Handles one route; `body` reads and parses the JSON request body. */
export type Handler = (
  request: IncomingMessage,
  body: () => Promise<Record<string, unknown>>,
) => Promise<Reply>;

/** RFC 9110 reason phrases that differ from Node's STATUS_CODES, which still uses RFC 7231's. */
const NEWER_REASON_PHRASES: Record<number, string> = {
  413: 'Content Too Large',
  422: 'Unprocessable Content',
};

/** An error that maps to one problem+json response. */
export class HttpProblem extends Error {
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

export async function readJsonBody(request: IncomingMessage): Promise<Record<string, unknown>> {
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

export function sendError(response: ServerResponse, error: unknown, logger: Logger, requestId: string): void {
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

export function sendJson(response: ServerResponse, reply: Reply, contentType = 'application/json'): void {
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
