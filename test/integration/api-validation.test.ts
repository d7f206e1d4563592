import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../support/stack.js';

// Bad input against the real API handler and dynalite. No request here may save anything, so the
// test compares every collection before and after.

let stack: TestStack;
let clusterId: string;
let directorId: string;

beforeAll(async () => {
  stack = await startTestStack({ varnishCount: 0, backendCount: 0 });
  clusterId = (await stack.api('POST', '/v1/clusters', { name: 'validation' })).body.id;
  directorId = (
    await stack.api('POST', '/v1/directors', { name: 'web', clusters: [], routeExpression: '^/' })
  ).body.id;
});

afterAll(async () => {
  await stack?.stop();
});

async function snapshot() {
  const collections = ['clusters', 'servers', 'directors', 'backends'];
  return Promise.all(collections.map(async (name) => (await stack.api('GET', `/v1/${name}`)).body.items));
}

async function expectRejected(method: string, path: string, body: unknown, status: number, field?: string) {
  const before = await snapshot();
  const response = await stack.api(method, path, body);

  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toBe('application/problem+json');
  expect(response.body.status).toBe(status);
  if (field !== undefined) {
    expect(response.body.errors.map((problem: { field: string }) => problem.field)).toContain(field);
  }
  expect(await snapshot()).toEqual(before);
  return response;
}

describe('invalid input', () => {
  it('returns 422 naming a missing field', async () => {
    await expectRejected('POST', '/v1/directors', { name: 'nofield', clusters: [] }, 422, 'routeExpression');
  });

  it('returns 422 for a port out of range', async () => {
    const body = { director: directorId, address: '10.0.0.1', port: 70_000 };
    await expectRejected('POST', '/v1/backends', body, 422, 'port');
  });

  it('returns 422 for a weight above 100', async () => {
    const body = { director: directorId, address: '10.0.0.1', port: 80, weight: 101 };
    await expectRejected('POST', '/v1/backends', body, 422, 'weight');
  });

  it('returns 422 for an unknown mode', async () => {
    const body = { name: 'm', clusters: [], routeExpression: '^/', mode: 'least_conn' };
    await expectRejected('POST', '/v1/directors', body, 422, 'mode');
  });

  it('returns 422 for a field the resource does not have', async () => {
    await expectRejected(
      'POST',
      '/v1/clusters',
      { name: 'extra', reloadTimestamp: 'x' },
      422,
      'reloadTimestamp',
    );
  });

  it('returns 422 for a reference to a missing cluster', async () => {
    const body = { name: 'orphan', clusters: [clusterId, 'missing'], routeExpression: '^/' };
    await expectRejected('POST', '/v1/directors', body, 422, 'clusters.1');
  });

  it('returns 422 for a server with neither agentUrl nor instanceId', async () => {
    await expectRejected(
      'POST',
      '/v1/servers',
      { cluster: clusterId, address: '127.0.0.1', port: 6081 },
      422,
      'agentUrl',
    );
  });

  it('returns 400 for a body that is not JSON', async () => {
    await expectRejected('POST', '/v1/clusters', '{"name":', 400);
  });

  it('returns 400 for a JSON array body', async () => {
    await expectRejected('POST', '/v1/clusters', [{ name: 'array' }], 400);
  });

  it('returns 415 for a form body', async () => {
    const before = await snapshot();
    const response = await stack.api('POST', '/v1/clusters', 'name=form', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(response.status).toBe(415);
    expect(await snapshot()).toEqual(before);
  });

  it('returns 413 for a body over 1 MiB', async () => {
    const huge = { name: 'big', padding: 'x'.repeat(1024 * 1024) };
    await expectRejected('POST', '/v1/clusters', huge, 413);
  });

  it('returns 422 for a PATCH that makes a valid resource invalid', async () => {
    await expectRejected(
      'PATCH',
      `/v1/directors/${directorId}`,
      { routeExpression: '(' },
      422,
      'routeExpression',
    );
  });
});

describe('VCL injection', () => {
  const hostileNames = ['web"; }', 'a b', 'web\nsub vcl_recv {', '1web', 'x'.repeat(49), 'web{', 'wéb'];
  const hostileExpressions = [
    '^/" ) { return (synth(200)); } if (req.url ~ "',
    '^/a\nsub vcl_deliver {',
    '^/a\u0000',
    '"}',
    '(unclosed',
  ];
  const hostileAddresses = [
    '127.0.0.1"; .port = "1',
    'example.com',
    '10.0.0.1\n',
    '::1"',
    '999.0.0.1',
    '',
    'fe80::1%eth0',
  ];

  for (const name of hostileNames) {
    it(`rejects director name ${JSON.stringify(name)}`, async () => {
      await expectRejected(
        'POST',
        '/v1/directors',
        { name, clusters: [], routeExpression: '^/' },
        422,
        'name',
      );
    });
  }

  for (const routeExpression of hostileExpressions) {
    it(`rejects route expression ${JSON.stringify(routeExpression)}`, async () => {
      const body = { name: 'hostile', clusters: [], routeExpression };
      await expectRejected('POST', '/v1/directors', body, 422, 'routeExpression');
    });
  }

  for (const address of hostileAddresses) {
    it(`rejects backend address ${JSON.stringify(address)}`, async () => {
      const body = { director: directorId, address, port: 80 };
      await expectRejected('POST', '/v1/backends', body, 422, 'address');
    });
  }

  it('rejects an agent URL that is not http', async () => {
    const body = { cluster: clusterId, address: '127.0.0.1', port: 6081, agentUrl: 'file:///etc/passwd' };
    await expectRejected('POST', '/v1/servers', body, 422, 'agentUrl');
  });
});

describe('resource errors', () => {
  it('returns 404 for an unknown id', async () => {
    const response = await stack.api('GET', '/v1/backends/does-not-exist');
    expect(response.status).toBe(404);
    expect(response.body.detail).toContain('does-not-exist');
  });

  it('returns 404 for an unknown task', async () => {
    expect((await stack.api('GET', '/v1/tasks/unknown')).status).toBe(404);
  });

  it('returns 405 with Allow for a wrong method', async () => {
    const response = await stack.api('PUT', `/v1/clusters/${clusterId}`, { name: 'put' });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, PATCH, DELETE');
  });

  it('returns 409 for a duplicate cluster name', async () => {
    const response = await expectRejected('POST', '/v1/clusters', { name: 'validation' }, 409);
    expect(response.body.detail).toContain('validation');
  });

  it('returns 409 for a rename onto a taken director name', async () => {
    await stack.api('POST', '/v1/directors', { name: 'taken', clusters: [], routeExpression: '^/t' });
    await expectRejected('PATCH', `/v1/directors/${directorId}`, { name: 'taken' }, 409);
  });

  it('returns 409 when deleting a cluster that a director uses', async () => {
    const director = await stack.api('POST', '/v1/directors', {
      name: 'uses',
      clusters: [clusterId],
      routeExpression: '^/u',
    });
    expect(director.status).toBe(201);
    await expectRejected('DELETE', `/v1/clusters/${clusterId}`, undefined, 409);
  });

  it('frees a name when its resource is deleted', async () => {
    const created = await stack.api('POST', '/v1/clusters', { name: 'reused' });
    expect((await stack.api('DELETE', `/v1/clusters/${created.body.id}`)).status).toBe(204);
    expect((await stack.api('POST', '/v1/clusters', { name: 'reused' })).status).toBe(201);
  });
});
