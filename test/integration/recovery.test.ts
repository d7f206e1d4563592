import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeDeps } from '../../functions/services/changes.js';
import { createResource } from '../../functions/services/resources.js';
import {
  createFleetCluster,
  startTestStack,
  type TestStack,
  throughVarnish,
  waitForTask,
} from '../support/stack.js';

// Accepted changes are never lost: a request that stops between saving and queueing, a failed
// reload, and a sync wait that runs out all end with the saved state live on real varnishd.

let stack: TestStack;
let clusterId: string;
let directorId: string;

beforeAll(async () => {
  stack = await startTestStack({ varnishCount: 1, backendCount: 2, syncMaxPolls: 5 });
  clusterId = await createFleetCluster(stack, 'recovery');
  const director = await stack.api('POST', '/v1/directors', {
    name: 'recover',
    clusters: [clusterId],
    routeExpression: '^/',
  });
  directorId = director.body.id;
});

afterAll(async () => {
  await stack?.stop();
});

const varnishPort = () => stack.fleet.nodes[0]?.varnishd.httpPort ?? 0;

describe('reconciler', () => {
  it('queues the task of a change whose request failed after the save', async () => {
    const brokenQueue: ChangeDeps = {
      ...stack.runtime.deps,
      queue: {
        send: async () => {
          throw new Error('SQS unavailable (simulated: the request stops after the save)');
        },
      },
    };
    const body = { director: directorId, address: '127.0.0.1', port: stack.fleet.backends[0]?.port };
    await expect(createResource(brokenQueue, 'backend', body)).rejects.toThrow('SQS unavailable');
    expect((await throughVarnish(varnishPort(), '/lost')).status).toBe(503);

    const report = await stack.runtime.reconcileNow();
    expect(report.outboxTasksQueued).toHaveLength(1);
    expect((await waitForTask(stack, report.outboxTasksQueued[0] ?? '')).status).toBe('succeeded');
    expect((await throughVarnish(varnishPort(), '/lost')).backend).toBe('backend-1');
  });

  it('retries a cluster whose reload failed once the server is back', async () => {
    await stack.stopAgent(0);
    const backends = (await stack.api('GET', '/v1/backends')).body.items;
    const patched = await stack.api('PATCH', `/v1/backends/${backends[0].id}`, {
      port: stack.fleet.backends[1]?.port,
    });
    expect(patched.status).toBe(502);

    await stack.restartAgent(0);
    const early = await stack.runtime.reconcileNow({ retryAfterMs: 3_600_000 });
    expect(early.clustersRetried).toEqual([]);

    const report = await stack.runtime.reconcileNow({ retryAfterMs: 0 });
    expect(report.clustersRetried.map((retry) => retry.clusterId)).toEqual([clusterId]);
    const retry = await waitForTask(stack, report.clustersRetried[0]?.taskId ?? '');
    expect(retry.status).toBe('succeeded');
    expect(retry.origin).toBe('retry');
    expect((await throughVarnish(varnishPort(), '/retried')).backend).toBe('backend-2');
  });
});

describe('open tasks', () => {
  it('sends again the messages of a task whose messages were lost', async () => {
    const lostQueue: ChangeDeps = { ...stack.runtime.deps, queue: { send: async () => {} } };
    const body = { director: directorId, address: '127.0.0.1', port: 20_600 };
    const created = await createResource(lostQueue, 'backend', body);
    const taskId = created.task?.id ?? '';
    expect((await stack.api('GET', `/v1/tasks/${taskId}`)).body.status).toBe('queued');

    const early = await stack.runtime.reconcileNow({ staleTaskAgeMs: 3_600_000 });
    expect(early.staleTasksResent).toEqual([]);
    const report = await stack.runtime.reconcileNow({ staleTaskAgeMs: 0 });
    expect(report.staleTasksResent).toContain(taskId);
    expect((await waitForTask(stack, taskId)).status).toBe('succeeded');

    const after = await stack.runtime.reconcileNow({ staleTaskAgeMs: 0 });
    expect(after.staleTasksResent).not.toContain(taskId);
  });

  it('restores a VCL replaced outside vaas at the fleet check', async () => {
    const server = (await stack.api('GET', '/v1/servers')).body.items[0];
    const agent = stack.runtime.deps.transport(server);
    await agent.loadVcl('manual', 'vcl 4.1;\nbackend default none;\n');
    await agent.useVcl('manual');
    expect((await throughVarnish(varnishPort(), '/fleet-check')).status).toBe(503);

    const report = await stack.runtime.reconcileNow({ resyncAfterMs: 0 });
    expect(report.clustersResynced).toContain(clusterId);
    const deadline = Date.now() + 20_000;
    while ((await throughVarnish(varnishPort(), '/fleet-check')).status !== 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect((await throughVarnish(varnishPort(), '/fleet-check')).backend).toMatch(/^backend-/);

    const again = await stack.runtime.reconcileNow({ resyncAfterMs: 3_600_000 });
    expect(again.clustersResynced).toEqual([]);
  });
});

describe('sync wait timeout', () => {
  it('returns 202 with Location when the reload outlasts the wait', async () => {
    stack.setLoadDelay(2_000);
    try {
      const response = await stack.api('POST', '/v1/backends', {
        director: directorId,
        address: '127.0.0.1',
        port: 20_500,
      });
      expect(response.status).toBe(202);
      expect(response.headers.get('location')).toBe(`/v1/tasks/${response.body.taskId}`);
      expect(response.headers.get('preference-applied')).toBeNull();
      expect((await waitForTask(stack, response.body.taskId)).status).toBe('succeeded');
    } finally {
      stack.setLoadDelay(0);
    }
  });
});
