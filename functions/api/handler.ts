import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { taskError, taskFinishedAt, taskStatus } from '../domain/coverage.js';
import { NotFoundError, ReloadFailedError, VaasError, ValidationError } from '../domain/errors.js';
import type { Task } from '../domain/model.js';
import { renderVcl } from '../domain/vcl.js';
import type { TaskWaiter } from '../ports.js';
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

export interface ApiDeps extends ChangeDeps {
  waiter: TaskWaiter;
}

/** Builds the API Gateway (REST, proxy integration) handler around its dependencies. */
export function createApiHandler(deps: ApiDeps) {
  const handle = async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    logger.appendKeys({ requestId: event.requestContext?.requestId });
    try {
      const route = matchRoute(event.httpMethod, event.path);
      return await dispatch(deps, route, event);
    } catch (error) {
      return errorResponse(error, event.path);
    }
  };

  return middy<APIGatewayProxyEvent, APIGatewayProxyResult, Error, Context>(handle).use(
    injectLambdaContext(logger, { resetKeys: true }),
  );
}

async function dispatch(
  deps: ApiDeps,
  route: Route,
  event: APIGatewayProxyEvent,
): Promise<APIGatewayProxyResult> {
  const method = event.httpMethod.toUpperCase();

  switch (route.name) {
    case 'task':
      return json(200, taskView(await requireTask(deps, route.id)));
    case 'clusterVcl':
      return json(200, await renderClusterVcl(deps, route.id, event.queryStringParameters?.server));
    case 'collection':
      if (method === 'GET') return json(200, { items: await listResources(deps, route.kind) });
      return respondToChange(deps, event, 201, await createResource(deps, route.kind, parseJsonBody(event)));
    case 'item':
      if (method === 'GET') return json(200, await getResource(deps, route.kind, route.id));
      if (method === 'PATCH') {
        return respondToChange(
          deps,
          event,
          200,
          await updateResource(deps, route.kind, route.id, parseJsonBody(event)),
        );
      }
      return respondToChange(deps, event, 204, await deleteResource(deps, route.kind, route.id));
  }
}

/**
 * Answers a saved change. Without `Prefer: respond-async` the caller waits until every affected
 * cluster reloaded; a wait that times out answers 202, because the change is saved but not known
 * to be live, and a success status would be a false promise.
 */
async function respondToChange(
  deps: ApiDeps,
  event: APIGatewayProxyEvent,
  successStatus: number,
  result: ChangeResult<object | undefined>,
): Promise<APIGatewayProxyResult> {
  const { resource, task } = result;
  if (!task) return json(successStatus, resource);

  logger.info('change queued', { taskId: task.id, clusters: Object.keys(task.clusters) });
  if (prefersAsync(event)) return accepted(resource, task.id, true);

  const waited = await deps.waiter.wait(task.id);
  if (waited.outcome === 'timedOut') return accepted(resource, task.id, false);

  const finished = await requireTask(deps, task.id);
  if (taskStatus(finished) === 'failed') {
    throw new ReloadFailedError(
      `the change was saved, but reloading failed: ${taskError(finished) ?? 'unknown error'}`,
      task.id,
      resource,
    );
  }
  return json(successStatus, resource);
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
