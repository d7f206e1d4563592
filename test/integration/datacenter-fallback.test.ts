import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DemoBackend, startDemoBackend } from '../../local/demo-backend.js';
import { startTestStack, type TestStack, throughVarnish } from '../support/stack.js';

// Datacenter preference on a real varnishd: the server is in datacenter `eu`, and each director
// has one backend there (a demo backend that the test closes and restarts) and one in `us` (the
// fleet's backend-1). A fast probe marks the local backend sick once it is closed. Varnish caches
// by URL, so every request uses a path of its own.

const PROBE = {
  name: 'fast',
  url: '/health',
  intervalSeconds: 0.2,
  timeoutSeconds: 0.1,
  window: 2,
  threshold: 1,
};

let stack: TestStack;
let local: DemoBackend | undefined;
let localPort: number;
let httpPort: number;
let requestCount = 0;

beforeAll(async () => {
  stack = await startTestStack({ varnishCount: 1, backendCount: 1 });
  local = await startDemoBackend({ name: 'local-eu' });
  localPort = local.port;
  httpPort = stack.fleet.nodes[0]?.varnishd.httpPort ?? 0;

  const eu = await create('/v1/datacenters', { name: 'eu' });
  const us = await create('/v1/datacenters', { name: 'us' });
  const probe = await create('/v1/probes', { ...PROBE, startHealthy: true });
  const cluster = await create('/v1/clusters', { name: 'geo' });
  await create('/v1/servers', {
    cluster,
    address: '127.0.0.1',
    port: httpPort,
    agentUrl: stack.fleet.nodes[0]?.agent.url,
    datacenter: eu,
  });

  for (const [name, mode] of [
    ['geo', 'round_robin'],
    ['sticky', 'hash'],
  ] as const) {
    const director = await create('/v1/directors', {
      name,
      mode,
      clusters: [cluster],
      routeExpression: `^/${name}/`,
      preferLocalDatacenter: true,
      probe,
    });
    await create('/v1/backends', { director, address: '127.0.0.1', port: localPort, datacenter: eu });
    await create('/v1/backends', {
      director,
      address: '127.0.0.1',
      port: stack.fleet.backends[0]?.port,
      datacenter: us,
    });
  }
});

afterAll(async () => {
  await local?.close();
  await stack?.stop();
});

async function create(path: string, body: object): Promise<string> {
  const response = await stack.api('POST', path, body);
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return response.body.id;
}

async function backendFor(director: string): Promise<string | null> {
  requestCount++;
  return (await throughVarnish(httpPort, `/${director}/${requestCount}`)).backend;
}

/** Sends requests until one is served by `expected`, and returns how long that took. */
async function waitForBackend(director: string, expected: string, timeoutMs = 5_000): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if ((await backendFor(director)) === expected) return Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${director} was not served by ${expected} within ${timeoutMs} ms`);
}

describe('datacenter fallback', () => {
  it('serves from the local datacenter while it is healthy', async () => {
    for (const director of ['geo', 'geo', 'geo', 'sticky', 'sticky']) {
      expect(await backendFor(director)).toBe('local-eu');
    }
  });

  it('moves to the other datacenter once the probe marks local sick', async () => {
    await local?.close();
    local = undefined;

    await waitForBackend('geo', 'backend-1');
    await waitForBackend('sticky', 'backend-1');
    for (const director of ['geo', 'geo', 'sticky']) {
      expect(await backendFor(director)).toBe('backend-1');
    }
  });

  it('returns to the local datacenter when it recovers', async () => {
    local = await startDemoBackend({ name: 'local-eu', port: localPort });

    await waitForBackend('geo', 'local-eu');
    await waitForBackend('sticky', 'local-eu');
    for (const director of ['geo', 'sticky']) {
      expect(await backendFor(director)).toBe('local-eu');
    }
  });
});
