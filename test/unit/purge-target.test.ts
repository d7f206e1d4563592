import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../functions/domain/errors.js';
import { banCommand, parsePurgeTarget } from '../../functions/domain/purge-target.js';

function fieldsOf(url: unknown, headers?: unknown): string[] {
  try {
    parsePurgeTarget(url, headers);
  } catch (error) {
    if (error instanceof ValidationError) return error.problems.map((problem) => problem.field);
    throw error;
  }
  return [];
}

describe('parsePurgeTarget', () => {
  it('accepts a path with a query', () => {
    expect(parsePurgeTarget('/a/b?c=1&d=%20', undefined)).toEqual({ path: '/a/b?c=1&d=%20', headers: {} });
  });

  it('takes the host of an absolute URL', () => {
    expect(parsePurgeTarget('https://Example.test:8443/x?y', undefined)).toEqual({
      path: '/x?y',
      headers: { host: 'example.test:8443' },
    });
  });

  it('lowercases header names', () => {
    expect(parsePurgeTarget('/x', { 'Accept-Encoding': 'gzip' }).headers).toEqual({
      'accept-encoding': 'gzip',
    });
  });

  it.each([
    ['a quote', '/x" || obj.status == "200'],
    ['a space', '/x y'],
    ['a backslash', '/x\\y'],
    ['a newline', '/x\nban obj.status ~ .'],
    ['no leading slash', 'x'],
    ['a fragment', 'http://h/x#f'],
    ['credentials', 'http://u:p@h/x'],
    ['another scheme', 'ftp://h/x'],
    ['a number', 7],
  ])('rejects a URL with %s', (_case, url) => {
    expect(fieldsOf(url)).toEqual(['url']);
  });

  it.each([
    ['a quote', { 'X-A': 'a"b' }, 'headers.X-A'],
    ['a space', { 'X-A': 'a b' }, 'headers.X-A'],
    ['an empty value', { 'X-A': '' }, 'headers.X-A'],
    ['a dot in the name', { 'X.A': 'v' }, 'headers.X.A'],
    ['a repeated name', { 'x-a': 'v', 'X-A': 'w' }, 'headers.X-A'],
  ])('rejects a header with %s', (_case, headers, field) => {
    expect(fieldsOf('/x', headers)).toEqual([field]);
  });

  it('rejects a host header that differs from the URL', () => {
    expect(fieldsOf('http://a.test/x', { Host: 'b.test' })).toEqual(['headers.host']);
  });
});

describe('banCommand', () => {
  it('joins the URL and sorted headers', () => {
    const command = banCommand({ path: '/x?y=1', headers: { x: '1', host: 'h.test' } });

    expect(command).toBe('ban req.url == "/x?y=1" && req.http.host == "h.test" && req.http.x == "1"');
  });

  it('checks a target built without parsePurgeTarget', () => {
    expect(() => banCommand({ path: '/" && obj.status == "200', headers: {} })).toThrow(ValidationError);
  });
});

describe('parsePurgeTarget hosts', () => {
  it('rejects a URL host with a double quote', () => {
    expect(() => parsePurgeTarget('http://a"b/x', undefined)).toThrow(ValidationError);
  });
});
