import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import {
  BadRequestError,
  ChangeDoesNotCompileError,
  ConflictError,
  type FieldProblem,
  MethodNotAllowedError,
  PayloadTooLargeError,
  PurgeFailedError,
  ReloadFailedError,
  UnsupportedMediaTypeError,
  type VaasError,
  ValidationError,
} from '../domain/errors.js';

export const MAX_BODY_BYTES = 1024 * 1024;

export function json(
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyResult {
  if (statusCode === 204) return { statusCode, headers, body: '' };
  return {
    statusCode,
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(body),
  };
}

/** Builds a problem+json response (RFC 9457) for a typed error. */
export function problem(error: VaasError, instance: string): APIGatewayProxyResult {
  const body: Record<string, unknown> = {
    type: 'about:blank',
    title: error.title,
    status: error.statusCode,
    detail: error.message,
    instance,
  };
  const headers: Record<string, string> = { 'Content-Type': 'application/problem+json' };

  if (error instanceof ValidationError) body.errors = error.problems satisfies FieldProblem[];
  if (error instanceof ConflictError && error.field !== undefined) {
    body.errors = [{ field: error.field, message: error.message }] satisfies FieldProblem[];
  }
  if (error instanceof ChangeDoesNotCompileError) body.compiler = error.compiler;
  if (error instanceof PurgeFailedError) body.results = error.results;
  if (error instanceof ReloadFailedError) {
    body.taskId = error.taskId;
    if (error.resource !== undefined) body.resource = error.resource;
    headers.Link = `</v1/tasks/${error.taskId}>; rel="related"`;
  }
  if (error instanceof MethodNotAllowedError) headers.Allow = error.allowed.join(', ');

  return { statusCode: error.statusCode, headers, body: JSON.stringify(body) };
}

/** Returns a request header by case-insensitive name. */
export function header(event: APIGatewayProxyEvent, name: string): string | undefined {
  const lowerName = name.toLowerCase();
  for (const [key, value] of Object.entries(event.headers ?? {})) {
    if (key.toLowerCase() === lowerName && value !== undefined) return value;
  }
  return undefined;
}

/** True when the client sent `Prefer: respond-async` (RFC 7240). */
export function prefersAsync(event: APIGatewayProxyEvent): boolean {
  const prefer = header(event, 'prefer') ?? '';
  return prefer
    .split(',')
    .map((preference) => preference.split(';')[0]?.trim().toLowerCase())
    .includes('respond-async');
}

/** Decodes and parses a JSON request body, enforcing the size limit and the media type. */
export function parseJsonBody(event: APIGatewayProxyEvent): unknown {
  const raw = event.body ?? '';
  const text = event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  if (Buffer.byteLength(text, 'utf8') > MAX_BODY_BYTES) {
    throw new PayloadTooLargeError(`the request body is larger than ${MAX_BODY_BYTES} bytes`);
  }

  const contentType = header(event, 'content-type');
  if (contentType !== undefined && !/^application\/([\w.+-]+\+)?json\b/i.test(contentType.trim())) {
    throw new UnsupportedMediaTypeError(`Content-Type must be application/json, not ${contentType}`);
  }
  if (text.trim() === '') throw new BadRequestError('the request body is empty; send a JSON object');

  try {
    return JSON.parse(text);
  } catch (error) {
    throw new BadRequestError(`the request body is not valid JSON: ${(error as Error).message}`);
  }
}
