import { describe, expect, it } from 'vitest';
import { matchRoute } from '../../functions/api/routes.js';
import { MethodNotAllowedError, NotFoundError } from '../../functions/domain/errors.js';

describe('matchRoute for subresources', () => {
  it.each([
    ['GET', '/v1/backends/b1/history', { name: 'history', kind: 'backend', id: 'b1' }],
    ['GET', '/v1/clusters/c1/history', { name: 'history', kind: 'cluster', id: 'c1' }],
    ['GET', '/v1/backends/b1/health', { name: 'health', kind: 'backend', id: 'b1' }],
    ['GET', '/v1/directors/d1/health', { name: 'health', kind: 'director', id: 'd1' }],
    ['GET', '/v1/clusters/c1/reloads', { name: 'clusterReloads', id: 'c1' }],
    ['POST', '/v1/clusters/c1/rollback', { name: 'rollback', id: 'c1' }],
    ['POST', '/v1/purge', { name: 'purge' }],
  ])('matches %s %s', (method, path, route) => {
    expect(matchRoute(method, path)).toEqual(route);
  });

  it.each(['/v1/servers/s1/health', '/v1/directors/d1/rollback', '/v1/purge/x'])('rejects %s', (path) => {
    expect(() => matchRoute('GET', path)).toThrow(NotFoundError);
  });

  it('allows only POST on rollback', () => {
    expect(() => matchRoute('GET', '/v1/clusters/c1/rollback')).toThrow(MethodNotAllowedError);
  });
});
