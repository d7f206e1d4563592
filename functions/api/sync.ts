import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';

/**
 * A write request as API Gateway's mapping template (or the local gateway) hands it to the
 * sync-request state machine. Every value a client controls is base64-encoded, so no quote or
 * backslash can break the JSON that the template writes.
 */
export interface SyncRequest {
  httpMethod: string;
  requestId: string;
  /** Base64 of the request path, for example `/v1/backends`. */
  path: string;
  /** Base64 of the request body; empty when there is none. */
  body: string;
  /** Base64 of the Content-Type and Prefer headers; empty when absent. */
  contentType: string;
  prefer: string;
  /** Base64 of the caller's identity (`$context.identity.userArn` on AWS); absent or empty when unknown. */
  caller?: string;
}

/** The state machine's next step after the save: respond now, or wait for the task first. */
export type SaveOutcome =
  | { wait: false; response: APIGatewayProxyResult }
  | {
      wait: true;
      taskId: string;
      successResponse: APIGatewayProxyResult;
      acceptedResponse: APIGatewayProxyResult;
    };

/** The events that the state machine sends to the API function. */
export type SyncAction =
  | { action: 'save'; request: SyncRequest }
  | { action: 'finish'; taskId: string; successResponse: APIGatewayProxyResult };

export function isSyncAction(event: unknown): event is SyncAction {
  return typeof event === 'object' && event !== null && 'action' in event;
}

export function encodeSyncRequest(request: {
  httpMethod: string;
  requestId: string;
  path: string;
  body: string;
  contentType?: string;
  prefer?: string;
  caller?: string;
}): SyncRequest {
  const encode = (value: string | undefined) => Buffer.from(value ?? '', 'utf8').toString('base64');
  return {
    httpMethod: request.httpMethod,
    requestId: request.requestId,
    path: encode(request.path),
    body: encode(request.body),
    contentType: encode(request.contentType),
    prefer: encode(request.prefer),
    caller: encode(request.caller),
  };
}

/** Turns a SyncRequest back into the proxy event the API routes. */
export function toProxyEvent(request: SyncRequest): APIGatewayProxyEvent {
  const decode = (value: string | undefined) => Buffer.from(value ?? '', 'base64').toString('utf8');
  const headers: Record<string, string> = {};
  const contentType = decode(request.contentType);
  const prefer = decode(request.prefer);
  if (contentType !== '') headers['content-type'] = contentType;
  if (prefer !== '') headers.prefer = prefer;
  const body = decode(request.body);

  return {
    httpMethod: request.httpMethod,
    path: decode(request.path),
    resource: '/{proxy+}',
    headers,
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    body: body === '' ? null : body,
    isBase64Encoded: false,
    requestContext: {
      requestId: request.requestId,
      identity: { caller: decode(request.caller) || null },
    } as APIGatewayProxyEvent['requestContext'],
  };
}
