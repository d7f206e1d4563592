import { randomBytes } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHistoryStore } from '../../functions/adapters/dynamo-history-store.js';
import { createTable } from '../../functions/adapters/dynamo-table.js';
import { createTaskStore } from '../../functions/adapters/dynamo-task-store.js';
import type { HistoryEntry, ReloadSnapshot } from '../../functions/domain/history.js';
import type { HistoryStore, TaskStore } from '../../functions/ports.js';
import { ensureTable, type RunningEmulator, startDynalite } from '../../local/emulators.js';

// The DynamoDB history store on dynalite, which enforces DynamoDB's 400 KB item limit.

let dynalite: RunningEmulator;
let history: HistoryStore;
let tasks: TaskStore;

beforeAll(async () => {
  dynalite = await startDynalite();
  const client = new DynamoDBClient({
    region: 'us-east-1',
    endpoint: dynalite.endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  await ensureTable(client, 'history-test');
  const table = createTable('history-test', client);
  history = createHistoryStore(table);
  tasks = createTaskStore(table);
});

afterAll(async () => {
  await dynalite?.close();
});

/** Text that gzip cannot shrink much: hex of random bytes. */
const incompressible = (bytes: number) => randomBytes(bytes / 2).toString('hex');

function entry(id: string, at: string, extra: Partial<HistoryEntry> = {}): HistoryEntry {
  return {
    id,
    at,
    caller: 'arn:aws:iam::123456789012:user/alice',
    kind: 'director',
    resourceId: 'd1',
    action: 'update',
    clusters: ['c1', 'c2'],
    ...extra,
  };
}

function snapshot(seq: number, payload = ''): ReloadSnapshot {
  return {
    clusterId: 'c1',
    seq,
    reloadedAt: new Date(seq * 1000).toISOString(),
    taskIds: [`t${seq}`],
    servers: [{ serverId: 's1', vclName: `vaas-${seq}`, vclHash: 'a'.repeat(64) }],
    config: {
      cluster: { id: 'c1', name: 'c' },
      servers: [],
      directors: [],
      backends: [],
      template: payload ? { id: 't', name: 'big', blocks: { recv: payload } } : undefined,
    },
  };
}

describe('history entries', () => {
  it('lists under the resource and each cluster', async () => {
    await history.putEntries([entry('e1', '2026-01-01T00:00:00.000Z')]);

    expect(
      (await history.listForResource('director', 'd1', { limit: 10 })).items.map((item) => item.id),
    ).toEqual(['e1']);
    expect((await history.listForCluster('c1', { limit: 10 })).items.map((item) => item.id)).toEqual(['e1']);
    expect((await history.listForCluster('c2', { limit: 10 })).items.map((item) => item.id)).toEqual(['e1']);
    expect((await history.getEntry('e1'))?.caller).toBe('arn:aws:iam::123456789012:user/alice');
  });

  it('lists newest first across pages', async () => {
    await history.putEntries([
      entry('e2', '2026-01-02T00:00:00.000Z'),
      entry('e3', '2026-01-03T00:00:00.000Z'),
    ]);

    const first = await history.listForResource('director', 'd1', { limit: 2 });
    const second = await history.listForResource('director', 'd1', { limit: 2, cursor: first.next });

    expect(first.items.map((item) => item.id)).toEqual(['e3', 'e2']);
    expect(second.items.map((item) => item.id)).toEqual(['e1']);
  });

  it('writes an entry again without a duplicate', async () => {
    await history.putEntries([entry('e3', '2026-01-03T00:00:00.000Z')]);

    expect((await history.listForResource('director', 'd1', { limit: 10 })).items).toHaveLength(3);
  });

  it('stores an entry larger than an item', async () => {
    const large = { id: 't1', blocks: { recv: incompressible(900_000) } };
    await history.putEntries([
      entry('big', '2026-02-01T00:00:00.000Z', { kind: 'vclTemplate', resourceId: 't1', after: large }),
    ]);

    const [stored] = (await history.listForResource('vclTemplate', 't1', { limit: 1 })).items;

    expect(stored?.after).toEqual(large);
  });

  it('rejects a cursor that is not one', async () => {
    await expect(history.listForCluster('c1', { limit: 1, cursor: '!!' })).rejects.toThrow(
      'cursor is invalid',
    );
  });
});

describe('reload snapshots', () => {
  it('finds the first snapshot at or after a seq', async () => {
    await history.putSnapshot(snapshot(3));
    await history.putSnapshot(snapshot(7));

    expect((await history.findSnapshot('c1', 1))?.seq).toBe(3);
    expect((await history.findSnapshot('c1', 4))?.seq).toBe(7);
    expect(await history.findSnapshot('c1', 8)).toBeUndefined();
    expect((await history.latestSnapshot('c1'))?.seq).toBe(7);
  });

  it('stores a configuration larger than an item', async () => {
    const big = snapshot(12, incompressible(1_500_000));
    await history.putSnapshot(big);

    expect(await history.latestSnapshot('c1')).toEqual(big);
  });

  it('lists snapshots without their configuration', async () => {
    const { items } = await history.listSnapshots('c1', { limit: 10 });

    expect(items.map((item) => item.seq)).toEqual([12, 7, 3]);
    expect(items[0]).not.toHaveProperty('config');
    expect(items[0]?.taskIds).toEqual(['t12']);
  });
});

describe('outbox', () => {
  it('keeps history entries larger than an item', async () => {
    const large = entry('queued', '2026-03-01T00:00:00.000Z', { after: { blocks: incompressible(800_000) } });
    await tasks.putOutbox({ taskId: 'task-1', clusters: ['c1'], createdAt: large.at, changes: [large] });

    const [stored] = await tasks.listOutbox();

    expect(stored?.changes).toEqual([large]);
    await tasks.deleteOutbox('task-1');
  });
});
