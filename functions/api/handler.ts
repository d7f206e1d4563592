import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { taskError, taskFinishedAt, taskStatus } from '../domain/coverage.js';
import { NotFoundError, ReloadFailedError, VaasError, ValidationError } from '../domain/errors.js';
import type { HistoryPage } from '../domain/history.js';
import type { Task } from '../domain/model.js';
import type { EntityKind } from '../ports.js';
import type { ChangeDeps, ChangeResult } from '../services/changes.js';
import { backendHealth, directorHealth } from '../services/health.js';
import { listHistory } from '../services/history.js';
import { previewClusterVcl, renderServerVcl } from '../services/preview.js';
import { purgeUrl } from '../services/purge.js';
import {
  createResource,
  deleteResource,
  getResource,
  listResources,
  updateResource,
} from '../services/resources.js';
import { rollbackCluster } from '../services/rollback.js';
import { logger } from '../shared/logger.js';
import { json, parseJsonBody, prefersAsync, problem } from './http.js';
import { matchRoute, type Route } from './routes.js';
import { isSyncAction, type SaveOutcome, type SyncAction, toProxyEvent } from './sync.js';

/** The transport in ChangeDeps reaches the agents for compile checks, previews, health and purges. */
export type ApiDeps = ChangeDeps;
type ApiEvent = APIGatewayProxyEvent | SyncAction;
type ApiResult = APIGatewayProxyResult | SaveOutcome;

/** A saved change whose caller waits for the reload; the state machine does the waiting. */
interface PendingChange {
  taskId: string;
  successResponse: APIGatewayProxyResult;
  acceptedResponse: APIGatewayProxyResult;
}

/**
 * Builds the API function. It takes two kinds of events: API Gateway proxy events (reads, and
 * writes sent straight to the function) and the two actions of the sync-request state machine,
 * which runs every write that API Gateway receives: `save` and `finish`.
 */
export function createApiHandler(deps: ApiDeps) {
  const handle = async (event: ApiEvent): Promise<ApiResult> => {
    if (!isSyncAction(event)) {
      const result = await handleRequest(deps, event);
      // Without the state machine nothing waits, so a synchronous write returns 202 here.
      return isPending(result) ? result.acceptedResponse : result;
    }
    if (event.action === 'finish') return finishResponse(deps, event.taskId, event.successResponse);

    const result = await handleRequest(deps, toProxyEvent(event.request));
    return isPending(result) ? { wait: true, ...result } : { wait: false, response: result };
  };

  return middy<ApiEvent, ApiResult, Error, Context>(handle).use(
    injectLambdaContext(logger, { resetKeys: true }),
  );
}

async function handleRequest(deps: ApiDeps, event: APIGatewayProxyEvent) {
  logger.appendKeys({ requestId: event.requestContext?.requestId });
  try {
    const route = matchRoute(event.httpMethod, event.path);
    return await dispatch({ ...deps, caller: callerOf(event) }, route, event);
  } catch (error) {
    return errorResponse(error, event.path);
  }
}

function isPending(result: APIGatewayProxyResult | PendingChange): result is PendingChange {
  return 'successResponse' in result;
}

async function dispatch(
  deps: ApiDeps,
  route: Route,
  event: APIGatewayProxyEvent,
): Promise<APIGatewayProxyResult | PendingChange> {
  const method = event.httpMethod.toUpperCase();

  const query = event.queryStringParameters ?? {};
  switch (route.name) {
    case 'task':
      return json(200, taskView(await requireTask(deps, route.id)));
    case 'clusterVcl':
      if (query.server !== undefined)
        return json(200, await renderServerVcl(deps.config, route.id, query.server));
      return json(200, await previewClusterVcl(deps, route.id));
    case 'clusterReloads':
      await requireResource(deps, 'cluster', route.id);
      return json(200, await deps.history.listSnapshots(route.id, pageOf(query)));
    case 'history':
      return json(200, await historyOf(deps, route.kind, route.id, pageOf(query)));
    case 'health':
      if (route.kind === 'backend') return json(200, await backendHealth(deps, route.id));
      return json(200, await directorHealth(deps, route.id));
    case 'rollback':
      return respondToChange(event, 200, await rollbackCluster(deps, route.id, parseJsonBody(event)));
    case 'purge':
      return json(200, await purgeUrl(deps, parseJsonBody(event)));
    case 'collection':
      if (method === 'GET') return json(200, { items: await listResources(deps, route.kind) });
      return respondToChange(event, 201, await createResource(deps, route.kind, parseJsonBody(event)));
    case 'item':
      if (method === 'GET') return json(200, await getResource(deps, route.kind, route.id));
      if (method === 'PATCH') {
        return respondToChange(
          event,
          200,
          await updateResource(deps, route.kind, route.id, parseJsonBody(event)),
        );
      }
      return respondToChange(event, 204, await deleteResource(deps, route.kind, route.id));
  }
}

/**
 * Builds the response to a saved change. With `Prefer: respond-async`, or when no cluster is
 * affected, the response is final now. Otherwise the caller waits until every affected cluster
 * reloaded, so the result carries both possible responses: the success, and the 202 for a wait
 * that runs out. A wait that runs out gets 202 because the change is saved but not known to be
 * live, and a success status would be a false promise.
 */
function respondToChange(
  event: APIGatewayProxyEvent,
  successStatus: number,
  result: ChangeResult<object | undefined>,
): APIGatewayProxyResult | PendingChange {
  const { resource, task } = result;
  if (!task) return json(successStatus, resource);

  logger.info('change queued', { taskId: task.id, clusters: Object.keys(task.clusters) });
  if (prefersAsync(event)) return accepted(resource, task.id, true);
  return {
    taskId: task.id,
    successResponse: json(successStatus, resource),
    acceptedResponse: accepted(resource, task.id, false),
  };
}

/** Builds the final response to a synchronous write once its task finished. */
async function finishResponse(
  deps: ApiDeps,
  taskId: string,
  successResponse: APIGatewayProxyResult,
): Promise<APIGatewayProxyResult> {
  const task = await requireTask(deps, taskId);
  const resource = successResponse.body ? (JSON.parse(successResponse.body) as object) : undefined;
  if (task.pendingCount > 0) return accepted(resource, taskId, false);
  if (taskStatus(task) !== 'failed') return successResponse;

  const error = new ReloadFailedError(
    `the change was saved, but reloading failed: ${taskError(task) ?? 'unknown error'}`,
    taskId,
    resource,
  );
  return problem(error, `/v1/tasks/${taskId}`);
}

function accepted(resource: object | undefined, taskId: string, preferenceApplied: boolean) {
  const headers: Record<string, string> = { Location: `/v1/tasks/${taskId}` };
  if (preferenceApplied) headers['Preference-Applied'] = 'respond-async';
  return json(202, { ...(resource ?? {}), taskId }, headers);
}

async function requireTask(deps: ApiDeps, id: string): Promise<Task> {
  const task = await deps.tasks.getTask(id);
  if (!task) throw new NotFoundError(`task ${id} not found`);
  return task;
}

function taskView(task: Task) {
  return {
    id: task.id,
    clusters: Object.keys(task.clusters),
    timestamp: task.timestamp,
    status: taskStatus(task),
    error: taskError(task) ?? null,
    finishedAt: taskFinishedAt(task) ?? null,
    origin: task.origin,
  };
}

/**
 * Returns the caller's identity for history: the IAM principal that signed the request on AWS, or
 * what the local gateway put there (its X-Vaas-Caller header, else `local`).
 */
function callerOf(event: APIGatewayProxyEvent): string {
  const identity = event.requestContext?.identity;
  return identity?.userArn || identity?.caller || 'unknown';
}

/** Lists history; a resource that never existed is 404, a deleted one keeps its history. */
async function historyOf(deps: ApiDeps, kind: EntityKind, id: string, page: HistoryPage) {
  const result = await listHistory(deps.history, kind, id, page);
  if (result.items.length === 0 && page.cursor === undefined) await requireResource(deps, kind, id);
  return result;
}

async function requireResource(deps: ApiDeps, kind: EntityKind, id: string) {
  if (!(await deps.config.get(kind, id))) throw new NotFoundError(`${kind} ${id} not found`);
}

const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 200;

function pageOf(query: Record<string, string | undefined>): HistoryPage {
  const limit = query.limit === undefined ? DEFAULT_PAGE_SIZE : Number(query.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw new ValidationError([{ field: 'limit', message: `must be an integer from 1 to ${MAX_PAGE_SIZE}` }]);
  }
  return { limit, cursor: query.cursor };
}

function errorResponse(error: unknown, path: string): APIGatewayProxyResult {
  if (error instanceof VaasError) {
    if (error.statusCode >= 500) logger.error('request failed', { error });
    return problem(error, path);
  }
  logger.error('unexpected error', { error });
  return problem(new VaasError('an unexpected error occurred; see the service log for details'), path);
}
