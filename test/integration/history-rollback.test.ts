import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFleetCluster, startTestStack, type TestStack, throughVarnish } from '../support/stack.js';

// Change history and rollback on the local runtime with one real varnishd.

let stack: TestStack;
let clusterId: string;
let directorId: string;
let backendId: string;
let createTaskId: string;

const varnishPort = () => stack.fleet.nodes[0]?.varnishd.httpPort ?? 0;
let requestCount = 0;

/** Fetches a path through varnishd with a query never used before, so that varnishd cannot serve it from cache. */
async function backendFor(path: string) {
  requestCount += 1;
  return (await throughVarnish(varnishPort(), `${path}?n=${requestCount}`)).backend;
}
const backendPort = (index: number) => stack.fleet.backends[index]?.port;

beforeAll(async () => {
  stack = await startTestStack({ varnishCount: 1, backendCount: 2 });
  clusterId = await createFleetCluster(stack, 'history');
  directorId = (
    await stack.api('POST', '/v1/directors', { name: 'site', clusters: [clusterId], routeExpression: '^/' })
  ).body.id;

  const created = await stack.api(
    'POST',
    '/v1/backends',
    { director: directorId, address: '127.0.0.1', port: backendPort(0) },
    { prefer: 'respond-async' },
  );
  backendId = created.body.id;
  createTaskId = created.body.taskId;
  await waitUntilLive(createTaskId);
});

afterAll(async () => {
  await stack?.stop();
});

async function waitUntilLive(taskId: string) {
  for (let attempt = 0; attempt < 300; attempt++) {
    const task = (await stack.api('GET', `/v1/tasks/${taskId}`)).body;
    if (task.status === 'succeeded') return;
    if (task.status === 'failed') throw new Error(`task ${taskId} failed: ${task.error}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`task ${taskId} did not finish`);
}

describe('history', () => {
  it('records caller, task, before and after', async () => {
    const patched = await stack.api(
      'PATCH',
      `/v1/backends/${backendId}`,
      { port: backendPort(1) },
      { 'x-vaas-caller': 'alice', prefer: 'respond-async' },
    );
    await waitUntilLive(patched.body.taskId);

    const { status, body } = await stack.api('GET', `/v1/backends/${backendId}/history`);
    const [latest, first] = body.items;

    expect(status).toBe(200);
    expect(body.items).toHaveLength(2);
    expect(latest.caller).toBe('alice');
    expect(latest.action).toBe('update');
    expect(latest.taskId).toBe(patched.body.taskId);
    expect(latest.before.port).toBe(backendPort(0));
    expect(latest.after.port).toBe(backendPort(1));
    expect(latest.seqs[clusterId]).toBeGreaterThan(0);
    expect(Date.parse(latest.at)).toBeGreaterThan(Date.parse(first.at) - 1);
    expect(first.caller).toBe('local');
    expect(first.action).toBe('create');
    expect(first.before).toBeUndefined();
    expect(await backendFor('/page')).toBe('backend-2');
  });

  it('lists all changes of a cluster', async () => {
    const { body } = await stack.api('GET', `/v1/clusters/${clusterId}/history`);
    const kinds = body.items.map((entry: { kind: string }) => entry.kind);

    expect(kinds).toContain('backend');
    expect(kinds).toContain('director');
    expect(kinds).toContain('server');
  });

  it('pages with limit and cursor', async () => {
    const first = await stack.api('GET', `/v1/clusters/${clusterId}/history?limit=1`);
    const second = await stack.api(
      'GET',
      `/v1/clusters/${clusterId}/history?limit=1&cursor=${encodeURIComponent(first.body.next)}`,
    );

    expect(first.body.items).toHaveLength(1);
    expect(second.body.items).toHaveLength(1);
    expect(second.body.items[0].id).not.toBe(first.body.items[0].id);
  });

  it('returns 404 for a resource that never existed', async () => {
    expect((await stack.api('GET', '/v1/backends/no-such-backend/history')).status).toBe(404);
  });

  it('lists reload snapshots of the cluster', async () => {
    const { body } = await stack.api('GET', `/v1/clusters/${clusterId}/reloads`);

    expect(body.items.length).toBeGreaterThan(0);
    expect(body.items.some((item: { taskIds: string[] }) => item.taskIds.includes(createTaskId))).toBe(true);
    expect(body.items[0].config).toBeUndefined();
    expect(body.items[0].servers[0].vclHash).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('rollback', () => {
  it('restores an earlier reload and its traffic', async () => {
    const later = await stack.api('POST', '/v1/directors', {
      name: 'later',
      clusters: [clusterId],
      routeExpression: '^/later/',
    });
    await stack.api('POST', '/v1/backends', {
      director: later.body.id,
      address: '127.0.0.1',
      port: backendPort(1),
    });
    const added = await stack.api('POST', '/v1/backends', {
      director: directorId,
      address: '127.0.0.1',
      port: 20_999,
    });
    expect(await backendFor('/later/x')).toBe('backend-2');

    const response = await stack.api('POST', `/v1/clusters/${clusterId}/rollback`, { taskId: createTaskId });

    expect(response.status).toBe(200);
    expect(response.body.snapshot.taskIds).toContain(createTaskId);
    expect(await backendFor('/page')).toBe('backend-1');
    expect(await backendFor('/later/x')).toBe('backend-1');
    expect((await stack.api('GET', `/v1/backends/${backendId}`)).body.port).toBe(backendPort(0));
    expect((await stack.api('GET', `/v1/directors/${later.body.id}`)).body.clusters).toEqual([]);
    expect((await stack.api('GET', `/v1/backends/${added.body.id}`)).status).toBe(404);
  });

  it('records the rollback writes in history', async () => {
    const { body } = await stack.api('GET', `/v1/backends/${backendId}/history`);

    expect(body.items[0].rollback.clusterId).toBe(clusterId);
    expect(body.items[0].after.port).toBe(backendPort(0));
  });

  it('rolls back to a history entry', async () => {
    const entries = (await stack.api('GET', `/v1/backends/${backendId}/history`)).body.items;
    const update = entries.find((entry: { caller: string }) => entry.caller === 'alice');

    const response = await stack.api('POST', `/v1/clusters/${clusterId}/rollback`, { historyId: update.id });

    expect(response.status).toBe(200);
    expect(await backendFor('/page')).toBe('backend-2');
  });

  it('changes nothing when the cluster matches already', async () => {
    const entries = (await stack.api('GET', `/v1/backends/${backendId}/history`)).body.items;
    const update = entries.find((entry: { caller: string }) => entry.caller === 'alice');

    const response = await stack.api('POST', `/v1/clusters/${clusterId}/rollback`, { historyId: update.id });

    expect(response.status).toBe(200);
    expect(response.body.writes).toEqual([]);
    expect(response.body.taskId).toBeUndefined();
  });

  it('rejects a task of another cluster with 422', async () => {
    const other = (await stack.api('POST', '/v1/clusters', { name: 'other' })).body.id;

    const response = await stack.api('POST', `/v1/clusters/${other}/rollback`, { taskId: createTaskId });

    expect(response.status).toBe(422);
    expect(response.body.errors[0].field).toBe('taskId');
  });

  it('rejects a body with both ids with 422', async () => {
    const response = await stack.api('POST', `/v1/clusters/${clusterId}/rollback`, {
      taskId: createTaskId,
      historyId: 'x',
    });

    expect(response.status).toBe(422);
  });
});
