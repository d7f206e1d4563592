import { describe, expect, it } from 'vitest';
import { planBatch, taskError, taskFinishedAt, taskStatus } from '../../functions/domain/coverage.js';
import type { Task, TaskClusterState } from '../../functions/domain/model.js';

function task(clusters: Record<string, TaskClusterState>): Task {
  return { id: 't', timestamp: '2026-01-01T00:00:00.000Z', clusters, pendingCount: 0, origin: 'change' };
}

describe('planBatch', () => {
  it('splits parts at the applied seq', () => {
    const plan = planBatch([{ seq: 7 }, { seq: 3 }, { seq: 5 }, { seq: 4 }], 4);
    expect(plan.covered.map((part) => part.seq)).toEqual([3, 4]);
    expect(plan.pending.map((part) => part.seq)).toEqual([5, 7]);
  });

  it('covers every part when the cluster is ahead', () => {
    const plan = planBatch([{ seq: 1 }, { seq: 2 }], 10);
    expect(plan.covered).toHaveLength(2);
    expect(plan.pending).toHaveLength(0);
  });

  it('covers nothing for a new cluster', () => {
    expect(planBatch([{ seq: 1 }], 0).pending).toHaveLength(1);
  });
});

describe('taskStatus', () => {
  it('is queued while no part started', () => {
    expect(taskStatus(task({ a: { seq: 1, status: 'queued' }, b: { seq: 1, status: 'queued' } }))).toBe(
      'queued',
    );
  });

  it('is running while one part is open and another finished', () => {
    const mixed = task({
      a: { seq: 1, status: 'succeeded', finishedAt: 'x' },
      b: { seq: 1, status: 'queued' },
    });
    expect(taskStatus(mixed)).toBe('running');
  });

  it('is failed when any finished part failed', () => {
    const failed = task({
      a: { seq: 1, status: 'succeeded', finishedAt: '2026-01-01T00:00:01.000Z' },
      b: { seq: 2, status: 'failed', error: 'boom', finishedAt: '2026-01-01T00:00:02.000Z' },
    });
    expect(taskStatus(failed)).toBe('failed');
    expect(taskError(failed)).toBe('cluster b: boom');
    expect(taskFinishedAt(failed)).toBe('2026-01-01T00:00:02.000Z');
  });

  it('is succeeded when every part succeeded', () => {
    expect(taskStatus(task({ a: { seq: 1, status: 'succeeded', finishedAt: 'x' } }))).toBe('succeeded');
  });

  it('has no finish time while a part is open', () => {
    expect(taskFinishedAt(task({ a: { seq: 1, status: 'running' } }))).toBeUndefined();
  });
});
