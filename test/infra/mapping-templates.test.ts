import { render } from 'velocityjs';
import { describe, expect, it } from 'vitest';
import { type SyncRequest, toProxyEvent } from '../../functions/api/sync.js';
import { RESPONSE_HEADERS, syncRequestTemplate, syncResponseTemplate } from '../../infra/sync-integration.js';

// API Gateway runs these Velocity templates; velocityjs renders them here with stand-ins for
// API Gateway's $input, $util and $context, because no API Gateway emulator exists. The
// stand-ins follow the documented behaviour: header and path maps with keySet() and get().

const STATE_MACHINE_ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:SyncRequest';

function renderRequest(request: {
  method: string;
  proxyPath: string;
  body: string;
  headers: Record<string, string>;
}) {
  const util = {
    base64Encode: (value: unknown) => Buffer.from(String(value ?? ''), 'utf8').toString('base64'),
  };
  const input = {
    body: request.body,
    params: () => ({
      header: { keySet: () => Object.keys(request.headers), get: (name: string) => request.headers[name] },
      path: {
        keySet: () => ['proxy'],
        get: (name: string) => (name === 'proxy' ? request.proxyPath : undefined),
      },
    }),
  };
  const context = {
    httpMethod: request.method,
    requestId: 'request-1',
    identity: { userArn: 'arn:aws:iam::123456789012:role/deployer' },
  };
  const output = render(syncRequestTemplate(STATE_MACHINE_ARN), { input, util, context });
  return JSON.parse(output) as { stateMachineArn: string; input: string };
}

function renderResponse(execution: object) {
  const context = {
    requestId: 'request-1',
    responseOverride: { header: {} as Record<string, string>, status: 0 },
  };
  const util = { parseJson: (text: string) => JSON.parse(text) };
  const body = render(syncResponseTemplate(), { input: { body: JSON.stringify(execution) }, util, context });
  return {
    status: context.responseOverride.status,
    headers: context.responseOverride.header,
    body: body.trim(),
  };
}

describe('request template', () => {
  it('carries hostile values through unchanged', () => {
    const body = '{"name":"a\'b\\"c\\\\d\\n#set($x = 1)$context.requestId","routeExpression":"^/€"}';
    const rendered = renderRequest({
      method: 'POST',
      proxyPath: "v1/directors/it's",
      body,
      headers: { 'CONTENT-TYPE': 'application/json; charset=utf-8', prefer: 'respond-async, wait=5' },
    });

    expect(rendered.stateMachineArn).toBe(STATE_MACHINE_ARN);
    const event = toProxyEvent(JSON.parse(rendered.input) as SyncRequest);
    expect(event.httpMethod).toBe('POST');
    expect(event.path).toBe("/v1/directors/it's");
    expect(event.body).toBe(body);
    expect(event.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(event.headers.prefer).toBe('respond-async, wait=5');
    expect(event.requestContext.requestId).toBe('request-1');
    expect(event.requestContext.identity.caller).toBe('arn:aws:iam::123456789012:role/deployer');
  });

  it('sends empty values for a DELETE without headers', () => {
    const rendered = renderRequest({ method: 'DELETE', proxyPath: 'v1/backends/b1', body: '', headers: {} });
    const event = toProxyEvent(JSON.parse(rendered.input) as SyncRequest);
    expect(event.body).toBeNull();
    expect(event.headers).toEqual({});
  });
});

describe('response template', () => {
  it('returns the status, headers and body of the output', () => {
    const headers = {
      'Content-Type': 'application/json',
      Location: '/v1/tasks/t1',
      'Preference-Applied': 'respond-async',
    };
    const output = { statusCode: 202, headers, body: '{"taskId":"t1","note":"a \\"quoted\\" value"}' };
    const response = renderResponse({ status: 'SUCCEEDED', output: JSON.stringify(output) });

    expect(response.status).toBe(202);
    expect(response.headers).toEqual(headers);
    expect(JSON.parse(response.body)).toEqual({ taskId: 't1', note: 'a "quoted" value' });
  });

  it('copies every header the API sets', () => {
    const headers = Object.fromEntries(RESPONSE_HEADERS.map((name) => [name, `value of ${name}`]));
    const output = { statusCode: 405, headers, body: '{}' };
    expect(renderResponse({ status: 'SUCCEEDED', output: JSON.stringify(output) }).headers).toEqual(headers);
  });

  it('returns 504 problem+json for an execution that timed out', () => {
    const response = renderResponse({ status: 'TIMED_OUT' });
    expect(response.status).toBe(504);
    expect(response.headers['Content-Type']).toBe('application/problem+json');
    expect(JSON.parse(response.body).detail).toContain('may be saved');
  });
});
