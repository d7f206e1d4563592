import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { MAX_BODY_BYTES, problem } from '../functions/api/http.js';
import { encodeSyncRequest } from '../functions/api/sync.js';
import { PayloadTooLargeError } from '../functions/domain/errors.js';
import { logger } from '../functions/shared/logger.js';
import type { SyncRunner } from './sync-runner.js';

type ProxyHandler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;

const WRITE_METHODS = new Set(['POST', 'PATCH', 'DELETE']);
const CALLER_HEADER = 'x-vaas-caller';
/** Visible ASCII, at most 256 characters: enough for an ARN or a user name. */
const CALLER_VALUE = /^[!-~]{1,256}$/;

export interface RunningGateway {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Serves the API over HTTP on 127.0.0.1 the way the deployed REST API does: reads go to the API
 * function as proxy events, and writes start the sync-request state machine, whose output is
 * the response.
 */
export async function startApiGateway(
  handler: ProxyHandler,
  runner: SyncRunner,
  port: number,
): Promise<RunningGateway> {
  const serve = async (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const body = await readBody(request);
    const result =
      body === undefined
        ? problem(
            new PayloadTooLargeError(`the request body is larger than ${MAX_BODY_BYTES} bytes`),
            url.pathname,
          )
        : await route(handler, runner, toProxyEvent(request, url, body));

    response.writeHead(result.statusCode, stringHeaders(result.headers));
    response.end(result.body);
  };

  const server: Server = createServer((request, response) => {
    // A client that aborts its upload rejects readBody; only that request may fail.
    serve(request, response).catch((error: unknown) => {
      logger.warn('local gateway request failed', { method: request.method, url: request.url, error });
      if (!response.headersSent) response.writeHead(500).end();
      else response.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actualPort = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actualPort}`,
    port: actualPort,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function route(handler: ProxyHandler, runner: SyncRunner, event: APIGatewayProxyEvent) {
  if (!WRITE_METHODS.has(event.httpMethod.toUpperCase())) return handler(event, lambdaContext());

  const syncRequest = encodeSyncRequest({
    httpMethod: event.httpMethod,
    requestId: event.requestContext.requestId,
    path: event.path,
    body: event.body ?? '',
    contentType: event.headers['content-type'],
    prefer: event.headers.prefer,
    caller: event.requestContext.identity.caller ?? undefined,
  });
  return runner.run(syncRequest, lambdaContext());
}

/** Reads the body, or returns undefined as soon as it passes the API's size limit. */
async function readBody(request: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) {
      request.resume();
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function toProxyEvent(request: IncomingMessage, url: URL, body: string): APIGatewayProxyEvent {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  const query = Object.fromEntries(url.searchParams.entries());

  return {
    httpMethod: request.method ?? 'GET',
    path: url.pathname,
    resource: '/{proxy+}',
    headers,
    multiValueHeaders: {},
    queryStringParameters: Object.keys(query).length > 0 ? query : null,
    multiValueQueryStringParameters: null,
    pathParameters: { proxy: url.pathname.slice(1) },
    stageVariables: null,
    body: body === '' ? null : body,
    isBase64Encoded: false,
    requestContext: {
      requestId: randomUUID(),
      httpMethod: request.method ?? 'GET',
      path: url.pathname,
      identity: { caller: localCaller(headers[CALLER_HEADER]) },
    } as never,
  };
}

/**
 * Returns the identity that history records for a local request: the X-Vaas-Caller header, or
 * `local`. Only the local gateway reads this header; on AWS the identity is the IAM principal.
 */
function localCaller(value: string | undefined): string {
  return value !== undefined && CALLER_VALUE.test(value) ? value : 'local';
}

function lambdaContext(): Context {
  return {
    functionName: 'vaas-api-local',
    awsRequestId: randomUUID(),
    invokedFunctionArn: 'arn:aws:lambda:local:000000000000:function:vaas-api-local',
    memoryLimitInMB: '512',
    functionVersion: '$LATEST',
    // Lambda's longest timeout: middy aborts a handler when the remaining time runs out.
    getRemainingTimeInMillis: () => 900_000,
  } as Context;
}

function stringHeaders(headers: APIGatewayProxyResult['headers']): Record<string, string> {
  return Object.fromEntries(Object.entries(headers ?? {}).map(([name, value]) => [name, String(value)]));
}
