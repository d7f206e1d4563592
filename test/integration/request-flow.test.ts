import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack, throughVarnish, waitForTask } from '../support/stack.js';

// The whole request flow on real components: the API handler behind the local gateway, dynalite,
// fauxqs, the sync-request state machine in aws-local-stepfunctions, the reload handler, and two
// real varnishd instances reached through their agents.

let stack: TestStack;
let clusterId: string;

beforeAll(async () => {
  stack = await startTestStack();
  const cluster = await stack.api('POST', '/v1/clusters', { name: 'flow' });
  clusterId = cluster.body.id;
  for (const node of stack.fleet.nodes) {
    const server = await stack.api('POST', '/v1/servers', {
      cluster: clusterId,
      address: '127.0.0.1',
      port: node.varnishd.httpPort,
      agentUrl: node.agent.url,
    });
    expect(server.status).toBe(201);
  }
});

afterAll(async () => {
  await stack?.stop();
});

async function createDirector(name: string, routeExpression: string, headers: Record<string, string> = {}) {
  return stack.api('POST', '/v1/directors', { name, clusters: [clusterId], routeExpression }, headers);
}

describe('synchronous writes', () => {
  it('returns 201 only when traffic reaches the new backend on both servers', async () => {
    const director = await createDirector('sync', '^/sync/');
    expect(director.status).toBe(201);

    const backendPort = stack.fleet.backends[0]?.port;
    const backend = await stack.api('POST', '/v1/backends', {
      director: director.body.id,
      address: '127.0.0.1',
      port: backendPort,
    });
    expect(backend.status).toBe(201);
    expect(backend.body.taskId).toBeUndefined();

    for (const node of stack.fleet.nodes) {
      const response = await throughVarnish(node.varnishd.httpPort, '/sync/page');
      expect(response.status).toBe(200);
      expect(response.backend).toBe('backend-1');
    }
  });

  it('shows the reload timestamp of the applied task on the cluster', async () => {
    const cluster = await stack.api('GET', `/v1/clusters/${clusterId}`);
    expect(cluster.status).toBe(200);
    expect(cluster.body.reloadTimestamp).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(cluster.body).not.toHaveProperty('changeSeq');
  });
});

describe('asynchronous writes', () => {
  it('returns 202 with a task that succeeds', async () => {
    const director = await createDirector('async', '^/async/', { prefer: 'respond-async' });
    expect(director.status).toBe(202);
    expect(director.headers.get('preference-applied')).toBe('respond-async');
    expect(director.headers.get('location')).toBe(`/v1/tasks/${director.body.taskId}`);
    expect(director.body.name).toBe('async');

    const task = await waitForTask(stack, director.body.taskId);
    expect(task.status).toBe('succeeded');
    expect(task.clusters).toEqual([clusterId]);
    expect(task.finishedAt).not.toBeNull();
  });

  it('coalesces 20 changes during a slow reload', async () => {
    const director = await createDirector('burst', '^/burst/');
    stack.setLoadDelay(1_500);
    const reloadsBefore = stack.counts.reloads;

    const slow = await stack.api(
      'POST',
      '/v1/backends',
      { director: director.body.id, address: '127.0.0.1', port: 20_000 },
      { prefer: 'respond-async' },
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    const taskIds = [slow.body.taskId as string];
    for (let index = 1; index <= 20; index++) {
      const response = await stack.api(
        'POST',
        '/v1/backends',
        { director: director.body.id, address: '127.0.0.1', port: 20_000 + index },
        { prefer: 'respond-async' },
      );
      expect(response.status).toBe(202);
      taskIds.push(response.body.taskId);
    }

    for (const taskId of taskIds) expect((await waitForTask(stack, taskId, 60_000)).status).toBe('succeeded');
    stack.setLoadDelay(0);
    const reloads = stack.counts.reloads - reloadsBefore;
    expect(reloads).toBeGreaterThanOrEqual(1);
    expect(reloads - 1).toBeLessThanOrEqual(2);

    const server = (await stack.api('GET', '/v1/servers')).body.items[0];
    const { body } = await stack.api('GET', `/v1/clusters/${clusterId}/vcl?server=${server.id}`);
    for (let index = 0; index <= 20; index++) expect(body.vcl).toContain(`.port = "${20_000 + index}";`);
    expect(stack.loads.at(-1)?.vcl).toBe(body.vcl);
  });
});

describe('failed reloads', () => {
  it('returns 502, keeps the old VCL serving and converges after recovery', async () => {
    const director = await createDirector('failing', '^/failing/');
    const downPort = stack.fleet.nodes[1]?.varnishd.httpPort;
    await stack.stopAgent(1);

    const created = await stack.api('POST', '/v1/backends', {
      director: director.body.id,
      address: '127.0.0.1',
      port: stack.fleet.backends[1]?.port,
    });
    expect(created.status).toBe(502);
    expect(created.headers.get('content-type')).toBe('application/problem+json');
    expect(created.body.taskId).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.body.detail).toContain(`127.0.0.1:${downPort}`);

    const backendId = created.body.resource.id;
    expect((await stack.api('GET', `/v1/backends/${backendId}`)).status).toBe(200);
    const task = (await stack.api('GET', `/v1/tasks/${created.body.taskId}`)).body;
    expect(task.status).toBe('failed');
    const cluster = (await stack.api('GET', `/v1/clusters/${clusterId}`)).body;
    expect(cluster.errorTimestamp).toBe(task.timestamp);
    expect(cluster.lastError).toContain(`127.0.0.1:${downPort}`);

    for (const node of stack.fleet.nodes) {
      expect((await throughVarnish(node.varnishd.httpPort, '/failing/page')).status).toBe(503);
      expect((await throughVarnish(node.varnishd.httpPort, '/sync/page')).backend).toBe('backend-1');
    }

    await stack.restartAgent(1);
    const next = await stack.api('PATCH', `/v1/backends/${backendId}`, { weight: 5 });
    expect(next.status).toBe(200);
    for (const node of stack.fleet.nodes) {
      expect((await throughVarnish(node.varnishd.httpPort, '/failing/page')).backend).toBe('backend-2');
    }
  });
});
