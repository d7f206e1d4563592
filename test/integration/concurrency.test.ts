import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../support/stack.js';

// Concurrent writes against the real API handler and dynalite. The director belongs to no
// cluster, so the writes trigger no reloads and race only in the store.

let stack: TestStack;
let directorId: string;

beforeAll(async () => {
  stack = await startTestStack({ varnishCount: 0, backendCount: 0 });
  const director = await stack.api('POST', '/v1/directors', {
    name: 'race',
    clusters: [],
    routeExpression: '^/',
  });
  directorId = director.body.id;
});

afterAll(async () => {
  await stack?.stop();
});

describe('concurrent writes', () => {
  it('keeps both of two parallel PATCHes', async () => {
    for (let round = 0; round < 6; round++) {
      const backend = await stack.api('POST', '/v1/backends', {
        director: directorId,
        address: '10.0.0.1',
        port: 8000 + round,
        weight: 1,
        enabled: true,
      });
      const id = backend.body.id;

      const [weight, enabled] = await Promise.all([
        stack.api('PATCH', `/v1/backends/${id}`, { weight: 50 + round }),
        stack.api('PATCH', `/v1/backends/${id}`, { enabled: false }),
      ]);
      expect(weight.status).toBe(200);
      expect(enabled.status).toBe(200);

      const stored = (await stack.api('GET', `/v1/backends/${id}`)).body;
      expect(stored.weight).toBe(50 + round);
      expect(stored.enabled).toBe(false);
      expect(stored).not.toHaveProperty('version');
    }
  });

  it('never leaves two directors with one name after a rename race', async () => {
    const created = await stack.api('POST', '/v1/directors', {
      name: 'old',
      clusters: [],
      routeExpression: '^/o',
    });
    const id = created.body.id;

    await Promise.all([
      stack.api('PATCH', `/v1/directors/${id}`, { name: 'renamed' }),
      stack.api('PATCH', `/v1/directors/${id}`, { mode: 'random' }),
    ]);
    const stored = (await stack.api('GET', `/v1/directors/${id}`)).body;
    expect(stored.name).toBe('renamed');
    expect(stored.mode).toBe('random');

    const reuse = await stack.api('POST', '/v1/directors', {
      name: 'renamed',
      clusters: [],
      routeExpression: '^/r',
    });
    expect(reuse.status).toBe(409);
    expect(reuse.body.errors[0].field).toBe('name');
    const oldName = await stack.api('POST', '/v1/directors', {
      name: 'old',
      clusters: [],
      routeExpression: '^/o',
    });
    expect(oldName.status).toBe(201);
  });

  it('rejects a second server at the same address and port', async () => {
    const cluster = (await stack.api('POST', '/v1/clusters', { name: 'unique-servers' })).body;
    const server = { cluster: cluster.id, address: '::1', port: 6081, agentUrl: 'http://127.0.0.1:1' };
    const first = await stack.api('POST', '/v1/servers', server, { prefer: 'respond-async' });
    expect(first.status).toBe(202);

    const second = await stack.api('POST', '/v1/servers', { ...server, address: '0:0:0:0:0:0:0:1' });
    expect(second.status).toBe(409);
    expect(second.body.errors[0].field).toBe('address');

    const ipv4 = { ...server, address: '127.0.0.1', port: 6090 };
    expect((await stack.api('POST', '/v1/servers', ipv4, { prefer: 'respond-async' })).status).toBe(202);
    const mapped = await stack.api('POST', '/v1/servers', { ...ipv4, address: '::ffff:127.0.0.1' });
    expect(mapped.status).toBe(409);
  });
});
