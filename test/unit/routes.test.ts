import type { APIGatewayProxyEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { prefersAsync } from '../../functions/api/http.js';
import { matchRoute } from '../../functions/api/routes.js';
import { MethodNotAllowedError, NotFoundError } from '../../functions/domain/errors.js';

describe('matchRoute', () => {
  it('matches collections and items', () => {
    expect(matchRoute('GET', '/v1/backends')).toEqual({ name: 'collection', kind: 'backend' });
    expect(matchRoute('PATCH', '/v1/servers/abc-1')).toEqual({ name: 'item', kind: 'server', id: 'abc-1' });
    expect(matchRoute('GET', '/v1/clusters/c1/vcl')).toEqual({ name: 'clusterVcl', id: 'c1' });
    expect(matchRoute('GET', '/v1/tasks/t1/')).toEqual({ name: 'task', id: 't1' });
  });

  it('throws NotFoundError for unknown paths', () => {
    for (const path of [
      '/v2/clusters',
      '/v1/unknown',
      '/v1/servers/a/vcl',
      '/v1/clusters/a/b/c',
      '/v1/tasks',
    ]) {
      expect(() => matchRoute('GET', path), path).toThrow(NotFoundError);
    }
  });

  it('throws NotFoundError for ids with unsafe characters', () => {
    expect(() => matchRoute('GET', '/v1/clusters/a%22b')).toThrow(NotFoundError);
  });

  it('throws MethodNotAllowedError listing the allowed methods', () => {
    try {
      matchRoute('DELETE', '/v1/tasks/t1');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(MethodNotAllowedError);
      expect((error as MethodNotAllowedError).allowed).toEqual(['GET']);
    }
  });
});

describe('prefersAsync', () => {
  const event = (prefer: string) => ({ headers: { Prefer: prefer } }) as unknown as APIGatewayProxyEvent;

  it('finds respond-async among other preferences', () => {
    expect(prefersAsync(event('return=minimal, respond-async; wait=10'))).toBe(true);
  });

  it('ignores other preferences', () => {
    expect(prefersAsync(event('return=representation'))).toBe(false);
  });
});
