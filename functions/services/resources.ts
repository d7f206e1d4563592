import { BadRequestError, ConcurrentUpdateError, NotFoundError } from '../domain/errors.js';
import type { EntityByKind, EntityKind } from '../ports.js';
import { type ChangeDeps, type ChangeResult, commitChange } from './changes.js';
import { KINDS } from './resource-kinds.js';
import { parseInput } from './validation.js';

// Create, read, update and delete for every kind of resource. Writes are validated in full and
// their references checked before anything is saved; then commitChange saves and queues a task.

export async function listResources(deps: ChangeDeps, kind: EntityKind): Promise<object[]> {
  const items = await deps.config.list(kind);
  return items.map((item) => publicView(kind, item));
}

export async function getResource(deps: ChangeDeps, kind: EntityKind, id: string): Promise<object> {
  return publicView(kind, await requireEntity(deps, kind, id));
}

/** Returns the API's view of an entity, without the version that orders its updates. */
function publicView(kind: EntityKind, entity: object): object {
  const { version: _version, ...view } = KINDS[kind].view(entity as never) as { version?: number };
  return view;
}

export async function createResource(
  deps: ChangeDeps,
  kind: EntityKind,
  body: unknown,
): Promise<ChangeResult<object>> {
  const spec = KINDS[kind];
  const input = parseInput(spec.schema, body) as Record<string, unknown>;
  const entity = spec.toEntity(deps.newId(), input);
  await spec.checkReferences(deps.config, entity as never);

  const affected = await spec.affectedClusters(deps.config, entity as never);
  const writes = [{ kind, id: entity.id, after: entity }];
  return commitChange(deps, { clusters: affected, writes }, async () => {
    await deps.config.create(kind, entity);
    return publicView(kind, entity);
  });
}

/** Attempts of a PATCH whose entity another request changed between the read and the write. */
const UPDATE_ATTEMPTS = 5;

/**
 * Applies a PATCH. The merge reads the entity and the write is conditional on its version, so a
 * concurrent update makes the write fail. The PATCH then starts over from a fresh read.
 */
export async function updateResource(
  deps: ChangeDeps,
  kind: EntityKind,
  id: string,
  body: unknown,
): Promise<ChangeResult<object>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await updateOnce(deps, kind, id, body);
    } catch (error) {
      if (!(error instanceof ConcurrentUpdateError) || attempt >= UPDATE_ATTEMPTS) throw error;
    }
  }
}

async function updateOnce(
  deps: ChangeDeps,
  kind: EntityKind,
  id: string,
  body: unknown,
): Promise<ChangeResult<object>> {
  const spec = KINDS[kind];
  const previous = await requireEntity(deps, kind, id);
  const previousFields = spec.writable(previous as never);
  const input = parseInput(spec.schema, mergePatch(previousFields, withoutMatchingId(body, id)));
  const nextFields = spec.writable(spec.toEntity(id, input as Record<string, unknown>) as never);

  // Every writable field is written: a field that the patch removed is written as undefined.
  const written = Object.fromEntries(
    Object.keys({ ...previousFields, ...nextFields }).map((field) => [field, nextFields[field]]),
  );
  const next = { ...previous, ...written } as EntityByKind[typeof kind];
  await spec.checkReferences(deps.config, next as never);

  const affected = [
    ...(await spec.affectedClusters(deps.config, previous as never)),
    ...(await spec.affectedClusters(deps.config, next as never)),
  ];
  const writes = [{ kind, id, before: previous, after: next }];
  return commitChange(deps, { clusters: affected, writes }, async () => {
    await deps.config.update(kind, previous, written as Partial<EntityByKind[typeof kind]>);
    return publicView(kind, next);
  });
}

export async function deleteResource(
  deps: ChangeDeps,
  kind: EntityKind,
  id: string,
): Promise<ChangeResult<undefined>> {
  const spec = KINDS[kind];
  const entity = await requireEntity(deps, kind, id);
  const affected = await spec.beforeDelete(deps.config, entity as never);

  const writes = [{ kind, id, before: entity }];
  return commitChange(deps, { clusters: affected, writes }, async () => {
    await deps.config.remove(kind, entity);
    return undefined;
  });
}

async function requireEntity<K extends EntityKind>(deps: ChangeDeps, kind: K, id: string) {
  const entity = await deps.config.get(kind, id);
  if (!entity) throw new NotFoundError(`${kind} ${id} not found`);
  return entity;
}

/** Applies a JSON Merge Patch (RFC 7396) to flat fields: null removes a field. */
function mergePatch(
  fields: Record<string, unknown>,
  patch: Record<string, unknown>,
): Record<string, unknown> {
  const merged = { ...fields, ...patch };
  for (const [field, value] of Object.entries(patch)) if (value === null) delete merged[field];
  return merged;
}

/** Drops `id` from a PATCH body when it names the resource itself; another id is an error. */
function withoutMatchingId(body: unknown, id: string): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BadRequestError('the request body must be a JSON object');
  }
  const { id: bodyId, ...rest } = body as Record<string, unknown>;
  if (bodyId !== undefined && bodyId !== id)
    throw new BadRequestError(`id ${String(bodyId)} does not match the URL`);
  return rest;
}
