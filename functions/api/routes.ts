import { MethodNotAllowedError, NotFoundError } from '../domain/errors.js';
import type { EntityKind } from '../ports.js';

export type Route =
  | { name: 'collection'; kind: EntityKind }
  | { name: 'item'; kind: EntityKind; id: string }
  | { name: 'history'; kind: EntityKind; id: string }
  | { name: 'health'; kind: 'backend' | 'director'; id: string }
  | { name: 'clusterVcl'; id: string }
  | { name: 'clusterReloads'; id: string }
  | { name: 'rollback'; id: string }
  | { name: 'purge' }
  | { name: 'task'; id: string };

const COLLECTIONS: Record<string, EntityKind> = {
  clusters: 'cluster',
  servers: 'server',
  directors: 'director',
  backends: 'backend',
  datacenters: 'datacenter',
  probes: 'probe',
  'time-profiles': 'timeProfile',
  routes: 'route',
  'vcl-templates': 'vclTemplate',
};

const ALLOWED: Record<Route['name'], string[]> = {
  collection: ['GET', 'POST'],
  item: ['GET', 'PATCH', 'DELETE'],
  history: ['GET'],
  health: ['GET'],
  clusterVcl: ['GET'],
  clusterReloads: ['GET'],
  rollback: ['POST'],
  purge: ['POST'],
  task: ['GET'],
};

const ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Matches a request path and method to a route. Throws NotFoundError or MethodNotAllowedError. */
export function matchRoute(method: string, path: string): Route {
  const route = routeForPath(path);
  if (!route) throw new NotFoundError(`no resource at ${path}`);

  const allowed = ALLOWED[route.name];
  if (!allowed.includes(method.toUpperCase())) throw new MethodNotAllowedError(allowed);
  return route;
}

function routeForPath(path: string): Route | undefined {
  const segments = path.replace(/\/+$/, '').split('/').slice(1);
  const [version, collection, id, sub, ...rest] = segments;
  if (version !== 'v1' || collection === undefined || rest.length > 0) return undefined;
  if (id !== undefined && !ID.test(id)) return undefined;

  if (collection === 'tasks') return id !== undefined && sub === undefined ? { name: 'task', id } : undefined;
  if (collection === 'purge') return id === undefined ? { name: 'purge' } : undefined;

  const kind = COLLECTIONS[collection];
  if (kind === undefined) return undefined;
  if (id === undefined) return { name: 'collection', kind };
  if (sub === undefined) return { name: 'item', kind, id };
  return subresource(kind, id, sub);
}

function subresource(kind: EntityKind, id: string, sub: string): Route | undefined {
  if (sub === 'history') return { name: 'history', kind, id };
  if (sub === 'health' && (kind === 'backend' || kind === 'director')) return { name: 'health', kind, id };
  if (kind !== 'cluster') return undefined;
  if (sub === 'vcl') return { name: 'clusterVcl', id };
  if (sub === 'reloads') return { name: 'clusterReloads', id };
  if (sub === 'rollback') return { name: 'rollback', id };
  return undefined;
}
