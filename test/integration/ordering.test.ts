import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeDeps } from '../../functions/services/changes.js';
import { processClusterBatch } from '../../functions/services/reload-worker.js';
import { createResource, updateResource } from '../../functions/services/resources.js';
import {
  createFleetCluster,
  startTestStack,
  type TestStack,
  throughVarnish,
  waitForTask,
} from '../support/stack.js';

// The two ordering invariants of the request flow, on dynalite, fauxqs and real varnishd:
// coverage decisions do not depend on clocks, and a reload reads every change saved before its task.

let stack: TestStack;
let clusterId: string;
let directorId: string;

beforeAll(async () => {
  stack = await startTestStack({ varnishCount: 1, backendCount: 2 });
  clusterId = await createFleetCluster(stack, 'ordering');
  const director = await stack.api('POST', '/v1/directors', {
    name: 'ordered',
    clusters: [clusterId],
    routeExpression: '^/ordered/',
  });
  directorId = director.body.id;
});

afterAll(async () => {
  await stack?.stop();
});

function withClockOffset(offsetMs: number): ChangeDeps {
  return { ...stack.runtime.deps, now: () => new Date(Date.now() + offsetMs) };
}

describe('clock skew', () => {
  it('reloads a change from a lagging clock', async () => {
    const fastApi = withClockOffset(+90_000);
    const slowApi = withClockOffset(-90_000);
    const varnishPort = stack.fleet.nodes[0]?.varnishd.httpPort ?? 0;

    const first = await createResource(fastApi, 'backend', {
      director: directorId,
      address: '127.0.0.1',
      port: stack.fleet.backends[0]?.port,
      enabled: true,
    });
    expect((await waitForTask(stack, first.task?.id ?? '')).status).toBe('succeeded');
    const reloadsAfterFirst = stack.counts.reloads;

    // Disable the first backend and add the second from an API whose clock is 3 minutes behind:
    // both tasks carry timestamps older than the cluster's reloadTimestamp.
    const second = await updateResource(slowApi, 'backend', (first.resource as { id: string }).id, {
      enabled: false,
    });
    const third = await createResource(slowApi, 'backend', {
      director: directorId,
      address: '127.0.0.1',
      port: stack.fleet.backends[1]?.port,
    });
    expect(Date.parse(third.task?.timestamp ?? '')).toBeLessThan(Date.parse(first.task?.timestamp ?? ''));

    expect((await waitForTask(stack, second.task?.id ?? '')).status).toBe('succeeded');
    expect((await waitForTask(stack, third.task?.id ?? '')).status).toBe('succeeded');
    expect(stack.counts.reloads).toBeGreaterThan(reloadsAfterFirst);
    expect((await throughVarnish(varnishPort, '/ordered/x')).backend).toBe('backend-2');
  });

  it('skips a covered task with a future timestamp', async () => {
    const futureApi = withClockOffset(+600_000);
    const created = await createResource(futureApi, 'backend', {
      director: directorId,
      address: '127.0.0.1',
      port: 20_100,
    });
    const task = created.task;
    if (!task) throw new Error('a backend write affects the cluster');
    expect((await waitForTask(stack, task.id)).status).toBe('succeeded');

    const skippedBefore = stack.counts.skippedTasks;
    const reloadsBefore = stack.counts.reloads;
    const part = {
      taskId: task.id,
      clusterId,
      seq: task.clusters[clusterId]?.seq ?? 0,
      timestamp: task.timestamp,
    };
    await processClusterBatch(stack.runtime.deps, clusterId, [part]);

    expect(stack.counts.reloads).toBe(reloadsBefore);
    expect(stack.counts.skippedTasks).toBe(skippedBefore + 1);
  });
});

describe('read consistency', () => {
  it('uses only strongly consistent base-table reads in a reload', async () => {
    const reads: { command: string; input: Record<string, unknown> }[] = [];
    const { dynamo } = stack.runtime.clients;
    dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        reads.push({ command: context.commandName ?? '', input: args.input as Record<string, unknown> });
        return next(args);
      },
      { step: 'initialize', name: 'recordReads' },
    );

    try {
      const created = await stack.api('POST', '/v1/backends', {
        director: directorId,
        address: '127.0.0.1',
        port: 20_200,
      });
      expect(created.status).toBe(201);
    } finally {
      dynamo.middlewareStack.remove('recordReads');
    }

    const queries = reads.filter((read) =>
      ['QueryCommand', 'GetItemCommand', 'ScanCommand'].includes(read.command),
    );
    expect(queries.length).toBeGreaterThan(0);
    for (const read of queries) {
      expect(read.command).not.toBe('ScanCommand');
      expect(read.input.IndexName).toBeUndefined();
      expect(read.input.ConsistentRead).toBe(true);
    }
  });
});
