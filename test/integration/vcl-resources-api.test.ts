import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../support/stack.js';

// CRUD and bad input for datacenters, probes, time profiles, routes and VCL templates, and the new
// fields of clusters, servers, directors and backends, against the real API handler and dynalite.
// No rejected request may save anything, so each one compares every collection before and after.

const COLLECTIONS = [
  'clusters',
  'servers',
  'directors',
  'backends',
  'datacenters',
  'probes',
  'time-profiles',
  'routes',
  'vcl-templates',
];

let stack: TestStack;
let clusterId: string;
let otherClusterId: string;
let directorId: string;
let datacenterId: string;
let probeId: string;

beforeAll(async () => {
  stack = await startTestStack({ varnishCount: 0, backendCount: 0 });
  clusterId = await create('/v1/clusters', { name: 'resources' });
  otherClusterId = await create('/v1/clusters', { name: 'other' });
  directorId = await create('/v1/directors', { name: 'web', clusters: [clusterId], routeExpression: '^/' });
  datacenterId = await create('/v1/datacenters', { name: 'eu1' });
  probeId = await create('/v1/probes', { name: 'health' });
});

afterAll(async () => {
  await stack?.stop();
});

async function create(path: string, body: object): Promise<string> {
  const response = await stack.api('POST', path, body);
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return response.body.id;
}

async function snapshot() {
  return Promise.all(COLLECTIONS.map(async (name) => (await stack.api('GET', `/v1/${name}`)).body.items));
}

async function expectRejected(method: string, path: string, body: unknown, status: number, field?: string) {
  const before = await snapshot();
  const response = await stack.api(method, path, body);

  expect(response.status, JSON.stringify(response.body)).toBe(status);
  expect(response.headers.get('content-type')).toBe('application/problem+json');
  if (field !== undefined) {
    expect(response.body.errors.map((problem: { field: string }) => problem.field)).toContain(field);
  }
  expect(await snapshot()).toEqual(before);
  return response;
}

const condition = (clause: object) => ({
  all: [{ field: 'url', operator: 'matches', value: '^/x', ...clause }],
});

describe('CRUD', () => {
  it('creates a probe with defaults', async () => {
    const probe = (await stack.api('GET', `/v1/probes/${probeId}`)).body;

    expect(probe).toMatchObject({
      url: '/',
      expectedStatus: 200,
      window: 8,
      threshold: 3,
      startHealthy: false,
    });
  });

  it('updates and deletes a time profile', async () => {
    const id = await create('/v1/time-profiles', { name: 'slow', firstByteTimeoutSeconds: 120 });

    const patched = await stack.api('PATCH', `/v1/time-profiles/${id}`, { maxConnections: 10 });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ firstByteTimeoutSeconds: 120, maxConnections: 10 });
    expect((await stack.api('DELETE', `/v1/time-profiles/${id}`)).status).toBe(204);
    expect((await stack.api('GET', `/v1/time-profiles/${id}`)).status).toBe(404);
  });

  it('creates a route and lists it', async () => {
    const id = await create('/v1/routes', {
      name: 'api',
      priority: 1,
      director: directorId,
      clusters: [clusterId],
      condition: condition({}),
    });

    const routes = (await stack.api('GET', '/v1/routes')).body.items;
    expect(routes.map((route: { id: string }) => route.id)).toContain(id);
  });

  it('stores the new server, director and backend fields', async () => {
    const server = await stack.api('POST', '/v1/servers', {
      cluster: clusterId,
      address: '127.0.0.1',
      port: 6081,
      agentUrl: 'http://127.0.0.1:6085',
      // A disabled server gets no reload, and no varnishd runs here.
      status: 'disabled',
      datacenter: datacenterId,
      canary: true,
    });
    expect(server.body).toMatchObject({ datacenter: datacenterId, canary: true });

    const backend = await stack.api('POST', '/v1/backends', {
      director: directorId,
      address: '10.0.0.1',
      port: 80,
      datacenter: datacenterId,
      tags: ['canary', 'v2'],
      probe: probeId,
    });
    expect(backend.body).toMatchObject({ datacenter: datacenterId, tags: ['canary', 'v2'], probe: probeId });

    const director = await stack.api('PATCH', `/v1/directors/${directorId}`, {
      mode: 'hash',
      hashBy: 'cookie',
      hashCookie: 'session',
      preferLocalDatacenter: true,
    });
    expect(director.body).toMatchObject({
      hashBy: 'cookie',
      hashCookie: 'session',
      preferLocalDatacenter: true,
    });
  });
});

describe('VCL injection in new fields', () => {
  // Values that would end a VCL string or a line. A brace alone is safe inside a string, so only
  // names, which become identifiers or stand outside strings, must reject it too.
  const hostileValues = ['a"; }', 'a\nb', 'a\u0000', '"}'];
  const hostileNames = [...hostileValues, '} sub vcl_recv {', 'a b'];
  const route = () => ({ name: 'r', priority: 1, director: directorId, clusters: [] });

  for (const value of hostileNames) {
    it(`rejects name ${JSON.stringify(value)} in every name field`, async () => {
      await expectRejected('POST', '/v1/datacenters', { name: value }, 422, 'name');
      await expectRejected('POST', '/v1/probes', { name: value }, 422, 'name');
      await expectRejected('POST', '/v1/time-profiles', { name: value }, 422, 'name');
      await expectRejected('POST', '/v1/vcl-templates', { name: value }, 422, 'name');
      await expectRejected(
        'POST',
        '/v1/routes',
        { ...route(), name: value, condition: condition({}) },
        422,
        'name',
      );
      await expectRejected(
        'POST',
        '/v1/routes',
        { ...route(), condition: condition({ field: 'header', name: value }) },
        422,
        'condition.all.0.name',
      );
      await expectRejected(
        'POST',
        '/v1/routes',
        { ...route(), condition: condition({ field: 'cookie', name: value }) },
        422,
        'condition.all.0.name',
      );
      await expectRejected(
        'PATCH',
        `/v1/directors/${directorId}`,
        { mode: 'hash', hashBy: 'cookie', hashCookie: value },
        422,
        'hashCookie',
      );
      await expectRejected(
        'POST',
        '/v1/backends',
        { director: directorId, address: '10.0.0.1', port: 80, tags: [value] },
        422,
        'tags.0',
      );
      const variables = { [value]: 'x' };
      await expectRejected('PATCH', `/v1/clusters/${clusterId}`, { variables }, 422, `variables.${value}`);
    });
  }

  for (const value of hostileValues) {
    it(`rejects value ${JSON.stringify(value)} in every string value`, async () => {
      await expectRejected('POST', '/v1/probes', { name: 'p', url: `/${value}` }, 422, 'url');
      await expectRejected(
        'POST',
        '/v1/routes',
        { ...route(), condition: condition({ value: `^/${value}` }) },
        422,
        'condition.all.0.value',
      );
      await expectRejected(
        'POST',
        '/v1/routes',
        { ...route(), condition: condition({ operator: 'equals', value }) },
        422,
        'condition.all.0.value',
      );
      await expectRejected(
        'PATCH',
        `/v1/clusters/${clusterId}`,
        { variables: { v: value } },
        422,
        'variables.v',
      );
    });
  }

  const brokenBlocks = [
    '}\nsub vcl_init {',
    'if (true) {',
    'set resp.http.X = "a;',
    'C{ abort(); }C',
    '"{{ bad-name }}"',
  ];

  for (const text of brokenBlocks) {
    it(`rejects template block ${JSON.stringify(text)}`, async () => {
      await expectRejected(
        'POST',
        '/v1/vcl-templates',
        { name: 't', blocks: { deliver: text } },
        422,
        'blocks.deliver',
      );
    });
  }

  it('rejects an unknown template block', async () => {
    await expectRejected(
      'POST',
      '/v1/vcl-templates',
      { name: 't', blocks: { init: '' } },
      422,
      'blocks.init',
    );
  });
});

describe('ranges and references', () => {
  it('rejects a threshold above the window', async () => {
    await expectRejected('POST', '/v1/probes', { name: 'p', window: 3, threshold: 4 }, 422, 'threshold');
  });

  it('rejects a timeout above the interval', async () => {
    await expectRejected(
      'POST',
      '/v1/probes',
      { name: 'p', intervalSeconds: 1, timeoutSeconds: 2 },
      422,
      'timeoutSeconds',
    );
  });

  it('rejects a window above 64', async () => {
    await expectRejected('POST', '/v1/probes', { name: 'p', window: 65 }, 422, 'window');
  });

  it('rejects a zero connect timeout', async () => {
    await expectRejected(
      'POST',
      '/v1/time-profiles',
      { name: 't', connectTimeoutSeconds: 0 },
      422,
      'connectTimeoutSeconds',
    );
  });

  it('rejects a datacenter name with capitals', async () => {
    await expectRejected('POST', '/v1/datacenters', { name: 'EU' }, 422, 'name');
  });

  it('rejects a duplicate datacenter name', async () => {
    await expectRejected('POST', '/v1/datacenters', { name: 'eu1' }, 409);
  });

  it('rejects hashBy outside mode hash', async () => {
    await expectRejected(
      'POST',
      '/v1/directors',
      { name: 'rr', routeExpression: '^/', hashBy: 'url' },
      422,
      'hashBy',
    );
  });

  it('rejects a missing probe reference', async () => {
    await expectRejected('PATCH', `/v1/directors/${directorId}`, { probe: 'missing' }, 422, 'probe');
  });

  it('rejects a route for a cluster its director does not serve', async () => {
    const body = {
      name: 'r',
      priority: 1,
      director: directorId,
      clusters: [otherClusterId],
      condition: condition({}),
    };
    await expectRejected('POST', '/v1/routes', body, 422, 'clusters.0');
  });

  it('rejects removing a cluster that a route uses from the director', async () => {
    await expectRejected('PATCH', `/v1/directors/${directorId}`, { clusters: [] }, 422, 'clusters');
  });

  it('rejects deleting a datacenter in use', async () => {
    await expectRejected('DELETE', `/v1/datacenters/${datacenterId}`, undefined, 409);
  });

  it('rejects deleting a probe in use', async () => {
    await expectRejected('DELETE', `/v1/probes/${probeId}`, undefined, 409);
  });

  it('rejects a cluster with a missing template', async () => {
    await expectRejected('PATCH', `/v1/clusters/${clusterId}`, { template: 'missing' }, 422, 'template');
  });

  it('rejects a variable that closes a block', async () => {
    const templateId = await create('/v1/vcl-templates', {
      name: 'raw',
      blocks: { backend_response: 'set beresp.ttl = {{ ttl }};' },
    });
    const body = { template: templateId, variables: { ttl: '1s; } sub vcl_init {' } };

    await expectRejected('PATCH', `/v1/clusters/${otherClusterId}`, body, 422, 'variables');
  });
});
