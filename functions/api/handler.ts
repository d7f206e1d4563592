import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { taskError, taskFinishedAt, taskStatus } from '../domain/coverage.js';
import { NotFoundError, ReloadFailedError, VaasError, ValidationError } from '../domain/errors.js';
import type { Task } from '../domain/model.js';
import { renderVcl } from '../domain/vcl.js';
import type { ChangeDeps, ChangeResult } from '../services/changes.js';
import { loadClusterConfig } from '../services/cluster-config.js';
import {
  createResource,
  deleteResource,
  getResource,
  listResources,
  updateResource,
} from '../services/resources.js';
import { logger } from '../shared/logger.js';
import { json, parseJsonBody, prefersAsync, problem } from './http.js';
import { matchRoute, type Route } from './routes.js';
import { isSyncAction, type SaveOutcome, type SyncAction, toProxyEvent } from './sync.js';

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
    return await dispatch(deps, route, event);
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

  switch (route.name) {
    case 'task':
      return json(200, taskView(await requireTask(deps, route.id)));
    case 'clusterVcl':
      return json(200, await renderClusterVcl(deps, route.id, event.queryStringParameters?.server));
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
 * Builds the response to a saved change. With `Prefer: respond-async`, or when no cluster is affected, the response
 * is final now. Otherwise the caller waits until every affected cluster reloaded: the result
 * carries both possible responses, the success and the 202 for a wait that runs out, because the
 * change is saved but not known to be live then, and a success status would be a false promise.
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

async function renderClusterVcl(deps: ApiDeps, clusterId: string, serverId: string | undefined) {
  const config = await loadClusterConfig(deps.config, clusterId);
  if (!config) throw new NotFoundError(`cluster ${clusterId} not found`);

  if (serverId === undefined) {
    throw new ValidationError([{ field: 'server', message: 'query parameter server is required' }]);
  }
  const server = config.servers.find((candidate) => candidate.id === serverId);
  if (!server) throw new NotFoundError(`server ${serverId} is not in cluster ${clusterId}`);

  return { cluster: clusterId, server: serverId, vcl: renderVcl(config, server) };
}

function errorResponse(error: unknown, path: string): APIGatewayProxyResult {
  if (error instanceof VaasError) {
    if (error.statusCode >= 500) logger.error('request failed', { error });
    return problem(error, path);
  }
  logger.error('unexpected error', { error });
  return problem(new VaasError('an unexpected error occurred; see the service log for details'), path);
}
