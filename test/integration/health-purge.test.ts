import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../local/varnishd.js';
import { createFleetCluster, startTestStack, type TestStack, throughVarnish } from '../support/stack.js';

// Backend health and purges on the local runtime with one real varnishd.

let stack: TestStack;
let clusterId: string;
let directorId: string;
let healthyId: string;
let sickId: string;
let origin: HttpServer;
let originBody = 'v1';

const varnishPort = () => stack.fleet.nodes[0]?.varnishd.httpPort ?? 0;

beforeAll(async () => {
  // An origin whose response changes on request, to tell a cached object from a fresh one.
  origin = createServer((_request, response) => response.end(originBody));
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));

  stack = await startTestStack({ varnishCount: 1, backendCount: 1 });
  clusterId = await createFleetCluster(stack, 'health');

  const probe = await stack.api('POST', '/v1/probes', {
    name: 'fast',
    url: '/',
    intervalSeconds: 0.2,
    timeoutSeconds: 0.1,
    window: 3,
    threshold: 2,
  });
  directorId = (
    await stack.api('POST', '/v1/directors', {
      name: 'checked',
      clusters: [clusterId],
      routeExpression: '^/checked/',
      mode: 'fallback',
      probe: probe.body.id,
    })
  ).body.id;
  const address = '127.0.0.1';
  healthyId = (
    await stack.api('POST', '/v1/backends', {
      director: directorId,
      address,
      port: stack.fleet.backends[0]?.port,
    })
  ).body.id;
  sickId = (
    await stack.api('POST', '/v1/backends', { director: directorId, address, port: await findFreePort() })
  ).body.id;

  const cached = await stack.api('POST', '/v1/directors', {
    name: 'cached',
    clusters: [clusterId],
    routeExpression: '^/cached/',
  });
  const port = (origin.address() as AddressInfo).port;
  await stack.api('POST', '/v1/backends', { director: cached.body.id, address, port });
  // Three probe intervals, so that the sick backend has failed its window.
  await new Promise((resolve) => setTimeout(resolve, 800));
});

afterAll(async () => {
  await stack?.stop();
  await new Promise((resolve) => origin?.close(resolve));
});

describe('health', () => {
  it('shows a reachable backend healthy', async () => {
    const { status, body } = await stack.api('GET', `/v1/backends/${healthyId}/health`);

    expect(status).toBe(200);
    expect(body.health).toHaveLength(1);
    expect(body.health[0].healthy).toBe(true);
    expect(body.health[0].adminHealth).toBe('probe');
    expect(body.health[0].probe.window).toBe(3);
    expect(body.health[0].cluster).toBe(clusterId);
  });

  it('shows a closed port sick', async () => {
    const { body } = await stack.api('GET', `/v1/backends/${sickId}/health`);

    expect(body.health[0].healthy).toBe(false);
    expect(body.health[0].probe.good).toBe(0);
  });

  it('shows both on the director', async () => {
    const { body } = await stack.api('GET', `/v1/directors/${directorId}/health`);
    const healthOf = (id: string) =>
      body.backends.find((backend: { backend: string }) => backend.backend === id).health[0].healthy;

    expect(healthOf(healthyId)).toBe(true);
    expect(healthOf(sickId)).toBe(false);
  });

  it('sends traffic to the healthy backend', async () => {
    expect((await throughVarnish(varnishPort(), '/checked/page')).backend).toBe('backend-1');
  });

  it('returns 404 for an unknown backend', async () => {
    expect((await stack.api('GET', '/v1/backends/unknown/health')).status).toBe(404);
  });
});

describe('purge', () => {
  it('removes a cached object on every server', async () => {
    originBody = 'v1';
    expect((await throughVarnish(varnishPort(), '/cached/item')).body).toBe('v1');
    originBody = 'v2';
    expect((await throughVarnish(varnishPort(), '/cached/item')).body).toBe('v1');

    const response = await stack.api('POST', '/v1/purge', { clusters: [clusterId], url: '/cached/item' });

    expect(response.status).toBe(200);
    expect(response.body.results).toHaveLength(1);
    expect(response.body.results[0].status).toBe('purged');
    expect((await throughVarnish(varnishPort(), '/cached/item')).body).toBe('v2');
  });

  it('purges only objects with the given host', async () => {
    originBody = 'v1';
    await throughVarnish(varnishPort(), '/cached/hosted');
    originBody = 'v2';

    await stack.api('POST', '/v1/purge', { clusters: [clusterId], url: 'http://other.test/cached/hosted' });
    expect((await throughVarnish(varnishPort(), '/cached/hosted')).body).toBe('v1');

    // fetch sends its own Host header, 127.0.0.1:PORT, whatever the caller sets.
    const host = `127.0.0.1:${varnishPort()}`;
    await stack.api('POST', '/v1/purge', {
      clusters: [clusterId],
      url: '/cached/hosted',
      headers: { Host: host },
    });
    expect((await throughVarnish(varnishPort(), '/cached/hosted')).body).toBe('v2');
  });

  it('rejects a URL breaking the ban', async () => {
    const response = await stack.api('POST', '/v1/purge', {
      clusters: [clusterId],
      url: '/x" || obj.status == "200',
    });

    expect(response.status).toBe(422);
    expect(response.body.errors[0].field).toBe('url');
  });

  it('rejects a header value with a space', async () => {
    const response = await stack.api('POST', '/v1/purge', {
      clusters: [clusterId],
      url: '/x',
      headers: { 'X-Tenant': 'a b' },
    });

    expect(response.status).toBe(422);
    expect(response.body.errors[0].field).toBe('headers.X-Tenant');
  });

  it('rejects an unknown cluster', async () => {
    const response = await stack.api('POST', '/v1/purge', { clusters: ['nope'], url: '/x' });

    expect(response.status).toBe(422);
    expect(response.body.errors[0].field).toBe('clusters.0');
  });

  it('returns 502 when an agent is down', async () => {
    await stack.stopAgent(0);
    try {
      const response = await stack.api('POST', '/v1/purge', { clusters: [clusterId], url: '/cached/item' });

      expect(response.status).toBe(502);
      expect(response.body.results[0].status).toBe('failed');
      expect(response.body.results[0].error).toContain('unreachable');
    } finally {
      await stack.restartAgent(0);
    }
  });
});
