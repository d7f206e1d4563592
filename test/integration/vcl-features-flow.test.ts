import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack, throughVarnish } from '../support/stack.js';

// Routes, canary servers and templates through the whole stack: the API, dynalite, the reload
// handler and two real varnishd. Server 0 is a regular server, server 1 a canary server. Directors
// without a route are tried in name order, so the catch-all director `web` comes last.
// Varnish caches by URL, so every request that checks routing uses a path of its own.

let stack: TestStack;
let clusterId: string;
let backendPorts: number[];

beforeAll(async () => {
  stack = await startTestStack({ varnishCount: 2, backendCount: 2 });
  backendPorts = stack.fleet.backends.map((backend) => backend.port);
  clusterId = (await stack.api('POST', '/v1/clusters', { name: 'features' })).body.id;
  for (const [index, node] of stack.fleet.nodes.entries()) {
    const server = await stack.api('POST', '/v1/servers', {
      cluster: clusterId,
      address: '127.0.0.1',
      port: node.varnishd.httpPort,
      agentUrl: node.agent.url,
      canary: index === 1,
    });
    expect(server.status).toBe(201);
  }
});

afterAll(async () => {
  await stack?.stop();
});

function httpPort(index: number): number {
  const node = stack.fleet.nodes[index];
  if (!node) throw new Error(`no node ${index}`);
  return node.varnishd.httpPort;
}

async function createDirector(
  name: string,
  routeExpression: string,
  backends: { port: number; tags?: string[] }[],
) {
  const director = await stack.api('POST', '/v1/directors', { name, clusters: [clusterId], routeExpression });
  expect(director.status).toBe(201);
  for (const backend of backends) {
    const created = await stack.api('POST', '/v1/backends', {
      director: director.body.id,
      address: '127.0.0.1',
      ...backend,
    });
    expect(created.status).toBe(201);
  }
  return director.body.id as string;
}

describe('routes', () => {
  it('send a path to a second director', async () => {
    await createDirector('web', '^/', [{ port: backendPorts[0] as number }]);
    const second = await createDirector('second', '^/second-by-expression/', [
      { port: backendPorts[1] as number },
    ]);

    const route = await stack.api('POST', '/v1/routes', {
      name: 'special',
      priority: 10,
      director: second,
      clusters: [clusterId],
      condition: { all: [{ field: 'url', operator: 'matches', value: '^/special/' }] },
    });
    expect(route.status).toBe(201);

    expect((await throughVarnish(httpPort(0), '/special/page')).backend).toBe('backend-2');
    expect((await throughVarnish(httpPort(0), '/elsewhere')).backend).toBe('backend-1');
  });

  it('stop matching once deleted', async () => {
    const routes = (await stack.api('GET', '/v1/routes')).body.items;
    expect(routes).toHaveLength(1);

    expect((await stack.api('DELETE', `/v1/routes/${routes[0].id}`)).status).toBe(204);
    expect((await throughVarnish(httpPort(0), '/special/after-delete')).backend).toBe('backend-1');
  });
});

describe('canary servers', () => {
  it('serve only canary backends', async () => {
    await createDirector('mixed', '^/mixed/', [
      { port: backendPorts[0] as number, tags: ['canary'] },
      { port: backendPorts[1] as number, tags: ['stable'] },
    ]);

    const canary = await Promise.all([1, 2, 3, 4].map((n) => throughVarnish(httpPort(1), `/mixed/${n}`)));
    for (const response of canary) expect(response.backend).toBe('backend-1');

    const regular = await Promise.all([1, 2, 3, 4].map((n) => throughVarnish(httpPort(0), `/mixed/${n}`)));
    expect(new Set(regular.map((response) => response.backend))).toEqual(new Set(['backend-1', 'backend-2']));
  });

  it('answer 503 for a director without canary backends', async () => {
    const response = await fetch(`http://127.0.0.1:${httpPort(1)}/second-by-expression/x`);

    expect(response.status).toBe(503);
    expect(response.statusText).toBe('No canary backend for this route');
  });
});

describe('templates', () => {
  let templateId: string;

  it('fill a variable and take effect', async () => {
    const template = await stack.api('POST', '/v1/vcl-templates', {
      name: 'headers',
      blocks: { deliver: 'set resp.http.X-Env = "{{ env }}";' },
    });
    expect(template.status).toBe(201);
    templateId = template.body.id;

    const cluster = await stack.api('PATCH', `/v1/clusters/${clusterId}`, {
      template: templateId,
      variables: { env: 'staging' },
    });
    expect(cluster.status).toBe(200);

    const response = await fetch(`http://127.0.0.1:${httpPort(0)}/template/1`);
    expect(response.headers.get('x-env')).toBe('staging');
  });

  it('reload when a variable changes', async () => {
    const cluster = await stack.api('PATCH', `/v1/clusters/${clusterId}`, { variables: { env: 'prod' } });
    expect(cluster.status).toBe(200);

    const response = await fetch(`http://127.0.0.1:${httpPort(0)}/template/2`);
    expect(response.headers.get('x-env')).toBe('prod');
  });

  it('reject a template change that uses an undefined variable', async () => {
    const before = (await stack.api('GET', `/v1/vcl-templates/${templateId}`)).body;
    const response = await stack.api('PATCH', `/v1/vcl-templates/${templateId}`, {
      blocks: { deliver: 'set resp.http.X-Team = "{{ team }}";' },
    });

    expect(response.status).toBe(422);
    expect(response.body.errors[0].field).toBe('blocks.deliver');
    expect(response.body.errors[0].message).toContain('team');
    expect((await stack.api('GET', `/v1/vcl-templates/${templateId}`)).body).toEqual(before);
  });

  it('reject variables that leave one undefined', async () => {
    const before = (await stack.api('GET', `/v1/clusters/${clusterId}`)).body;
    const response = await stack.api('PATCH', `/v1/clusters/${clusterId}`, { variables: { other: 'x' } });

    expect(response.status).toBe(422);
    expect(response.body.errors[0].field).toBe('variables.env');
    expect((await stack.api('GET', `/v1/clusters/${clusterId}`)).body).toEqual(before);
  });

  it('reject a new cluster with an undefined variable', async () => {
    const before = (await stack.api('GET', '/v1/clusters')).body.items;
    const response = await stack.api('POST', '/v1/clusters', {
      name: 'undefined-variable',
      template: templateId,
    });

    expect(response.status).toBe(422);
    expect(response.body.errors[0].field).toBe('variables.env');
    expect((await stack.api('GET', '/v1/clusters')).body.items).toEqual(before);
  });

  it('reject deletion while a cluster uses it', async () => {
    const response = await stack.api('DELETE', `/v1/vcl-templates/${templateId}`);

    expect(response.status).toBe(409);
  });
});
