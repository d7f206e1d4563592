import { describe, expect, it } from 'vitest';
import type { Backend, ClusterConfig, Director, Server } from '../../functions/domain/model.js';
import {
  hashFromVclName,
  renderVcl,
  VclRenderError,
  vclContentHash,
  vclNameFor,
} from '../../functions/domain/vcl.js';

const server: Server = {
  id: 'server-1',
  cluster: 'cluster-1',
  address: '127.0.0.1',
  port: 6081,
  agentUrl: 'http://127.0.0.1:6085',
  status: 'active',
};

function director(overrides: Partial<Director> & Pick<Director, 'id' | 'name'>): Director {
  return { clusters: ['cluster-1'], mode: 'round_robin', router: 'url', routeExpression: '^/', ...overrides };
}

function backend(overrides: Partial<Backend> & Pick<Backend, 'id' | 'director'>): Backend {
  return { address: '10.0.0.1', port: 8080, weight: 1, enabled: true, ...overrides };
}

function config(directors: Director[], backends: Backend[]): ClusterConfig {
  return { cluster: { id: 'cluster-1', name: 'prod' }, servers: [server], directors, backends };
}

/** Returns the lines of the VCL with leading whitespace removed. */
function lines(vcl: string): string[] {
  return vcl.split('\n').map((line) => line.trim());
}

describe('renderVcl', () => {
  it('starts with vcl 4.1, the directors import and a none default', () => {
    const vcl = renderVcl(config([], []), server);

    expect(vcl.startsWith('vcl 4.1;\n')).toBe(true);
    expect(lines(vcl)).toContain('import directors;');
    expect(lines(vcl)).toContain('backend default none;');
  });

  it('answers 404 without any director', () => {
    const vcl = renderVcl(config([], []), server);

    expect(lines(vcl)).toContain('return (synth(404, "No route"));');
    expect(vcl).not.toContain('vcl_init');
  });

  it('declares a backend with host and port strings', () => {
    const vcl = renderVcl(
      config(
        [director({ id: 'd1', name: 'api' })],
        [backend({ id: 'b1', director: 'd1', address: '10.1.2.3', port: 81 })],
      ),
      server,
    );

    expect(vcl).toContain('backend b0_0 {\n    .host = "10.1.2.3";\n    .port = "81";\n}');
  });

  it('omits disabled and weight 0 backends', () => {
    const vcl = renderVcl(
      config(
        [director({ id: 'd1', name: 'api' })],
        [
          backend({ id: 'b1', director: 'd1', address: '10.0.0.1' }),
          backend({ id: 'b2', director: 'd1', address: '10.0.0.2', enabled: false }),
          backend({ id: 'b3', director: 'd1', address: '10.0.0.3', weight: 0 }),
        ],
      ),
      server,
    );

    expect(vcl).toContain('"10.0.0.1"');
    expect(vcl).not.toContain('10.0.0.2');
    expect(vcl).not.toContain('10.0.0.3');
    expect(vcl.match(/^backend b/gm)).toHaveLength(1);
  });

  it('adds every declared backend to its director', () => {
    const vcl = renderVcl(
      config(
        [director({ id: 'd1', name: 'api' })],
        [backend({ id: 'b1', director: 'd1' }), backend({ id: 'b2', director: 'd1', address: '10.0.0.2' })],
      ),
      server,
    );

    expect(lines(vcl)).toContain('d0_api.add_backend(b0_0);');
    expect(lines(vcl)).toContain('d0_api.add_backend(b0_1);');
  });

  it('includes only directors of the cluster', () => {
    const vcl = renderVcl(
      config(
        [
          director({ id: 'd1', name: 'mine', routeExpression: '^/mine' }),
          director({ id: 'd2', name: 'theirs', clusters: ['cluster-2'], routeExpression: '^/theirs' }),
        ],
        [backend({ id: 'b1', director: 'd1' }), backend({ id: 'b2', director: 'd2', address: '10.9.9.9' })],
      ),
      server,
    );

    expect(vcl).toContain('^/mine');
    expect(vcl).not.toContain('^/theirs');
    expect(vcl).not.toContain('10.9.9.9');
  });

  it('renders each director mode', () => {
    const modes = ['round_robin', 'random', 'fallback', 'hash'] as const;
    const directors = modes.map((mode) =>
      director({ id: `d-${mode}`, name: mode, mode, routeExpression: `^/${mode}` }),
    );
    const backends = modes.map((mode) => backend({ id: `b-${mode}`, director: `d-${mode}`, weight: 7 }));
    const vcl = lines(renderVcl(config(directors, backends), server));

    expect(vcl).toContain('new d0_fallback = directors.fallback();');
    expect(vcl).toContain('d0_fallback.add_backend(b0_0);');
    expect(vcl).toContain('new d1_hash = directors.hash();');
    expect(vcl).toContain('d1_hash.add_backend(b1_0, 7);');
    expect(vcl).toContain('set req.backend_hint = d1_hash.backend(req.url);');
    expect(vcl).toContain('new d2_random = directors.random();');
    expect(vcl).toContain('d2_random.add_backend(b2_0, 7);');
    expect(vcl).toContain('new d3_round_robin = directors.round_robin();');
    expect(vcl).toContain('d3_round_robin.add_backend(b3_0);');
    expect(vcl).toContain('set req.backend_hint = d3_round_robin.backend();');
  });

  it('orders fallback backends by id', () => {
    const vcl = renderVcl(
      config(
        [director({ id: 'd1', name: 'api', mode: 'fallback' })],
        [
          backend({ id: 'b2', director: 'd1', address: '10.0.0.2' }),
          backend({ id: 'b1', director: 'd1', address: '10.0.0.1' }),
        ],
      ),
      server,
    );

    expect(vcl.indexOf('"10.0.0.1"')).toBeLessThan(vcl.indexOf('"10.0.0.2"'));
  });

  it('routes by url or host in director name order', () => {
    const vcl = lines(
      renderVcl(
        config(
          [
            director({ id: 'd1', name: 'zeta', router: 'host', routeExpression: '^www\\.example\\.com$' }),
            director({ id: 'd2', name: 'alpha', routeExpression: '^/api/' }),
          ],
          [backend({ id: 'b1', director: 'd1' }), backend({ id: 'b2', director: 'd2' })],
        ),
        server,
      ),
    );

    expect(vcl).toContain('if (req.url ~ "^/api/") {');
    expect(vcl).toContain('} elsif (req.http.host ~ "^www\\.example\\.com$") {');
    expect(vcl.indexOf('set req.backend_hint = d0_alpha.backend();')).toBeLessThan(
      vcl.indexOf('set req.backend_hint = d1_zeta.backend();'),
    );
  });

  it('answers 503 for a route without backends', () => {
    const vcl = renderVcl(
      config(
        [director({ id: 'd1', name: 'empty' })],
        [backend({ id: 'b1', director: 'd1', enabled: false })],
      ),
      server,
    );

    expect(lines(vcl)).toContain('return (synth(503, "No backend available for this route"));');
    expect(vcl).not.toContain('d0_empty');
  });

  it('keeps identifiers under 64 characters for 48-character names', () => {
    const longName = `a${'-'.repeat(10)}${'z'.repeat(37)}`;
    const directors = Array.from({ length: 12 }, (_, index) =>
      director({ id: `d${index}`, name: `${longName.slice(0, 46)}${String(index).padStart(2, '0')}` }),
    );
    const backends = directors.map((item) => backend({ id: `b-${item.id}`, director: item.id }));
    const vcl = renderVcl(config(directors, backends), server);
    const identifiers = [...vcl.matchAll(/\bnew (\S+) =/g)].map((match) => match[1] ?? '');

    expect(identifiers).toHaveLength(12);
    expect(new Set(identifiers).size).toBe(12);
    for (const identifier of identifiers) {
      expect(identifier).toMatch(/^[A-Za-z][A-Za-z0-9_]{0,63}$/);
    }
  });

  it('gives directors and backends distinct identifiers', () => {
    const vcl = renderVcl(
      config([director({ id: 'd1', name: 'b0' })], [backend({ id: 'b1', director: 'd1' })]),
      server,
    );

    expect(lines(vcl)).toContain('new d0_b0 = directors.round_robin();');
    expect(lines(vcl)).toContain('d0_b0.add_backend(b0_0);');
  });

  it('renders identical input identically', () => {
    const input = config(
      [director({ id: 'd1', name: 'api' }), director({ id: 'd2', name: 'web', mode: 'hash' })],
      [backend({ id: 'b1', director: 'd1' }), backend({ id: 'b2', director: 'd2', address: '::1' })],
    );
    const shuffled = {
      ...input,
      directors: [...input.directors].reverse(),
      backends: [...input.backends].reverse(),
    };

    expect(renderVcl(shuffled, server)).toBe(renderVcl(input, server));
  });

  it('writes no comments', () => {
    const vcl = renderVcl(
      config([director({ id: 'd1', name: 'api' })], [backend({ id: 'b1', director: 'd1' })]),
      server,
    );

    expect(vcl).not.toMatch(/#|\/\/|\/\*/);
  });
});

describe('renderVcl defence in depth', () => {
  const unsafeExpressions = ['^/a"; } sub vcl_recv { "', '^/a\nb', '^/a\u0000', '^/a\u007f', ''];

  for (const routeExpression of unsafeExpressions) {
    it(`throws for routeExpression ${JSON.stringify(routeExpression)}`, () => {
      const input = config([director({ id: 'd1', name: 'api', routeExpression })], []);

      expect(() => renderVcl(input, server)).toThrow(VclRenderError);
    });
  }

  const unsafeAddresses = ['example.com', '10.0.0.1"; }', '10.0.0.256', 'fe80::1%a"b', ''];

  for (const address of unsafeAddresses) {
    it(`throws for address ${JSON.stringify(address)}`, () => {
      const input = config(
        [director({ id: 'd1', name: 'api' })],
        [backend({ id: 'b1', director: 'd1', address })],
      );

      expect(() => renderVcl(input, server)).toThrow(VclRenderError);
    });
  }

  it('throws for a director name that is no identifier', () => {
    const input = config([director({ id: 'd1', name: 'api = 1; }' })], []);

    expect(() => renderVcl(input, server)).toThrow(VclRenderError);
  });

  it('throws for a port out of range', () => {
    const input = config(
      [director({ id: 'd1', name: 'api' })],
      [backend({ id: 'b1', director: 'd1', port: 70_000 })],
    );

    expect(() => renderVcl(input, server)).toThrow(VclRenderError);
  });
});

describe('VCL names', () => {
  it('hashes content as sha256 hex', () => {
    expect(vclContentHash('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('names a VCL after hash and time', () => {
    const hash = vclContentHash('vcl 4.1;');
    const now = new Date('2025-01-02T03:04:05.678Z');
    const name = vclNameFor(hash, now);

    expect(name).toMatch(/^vaas-[0-9a-f]{16}-[0-9a-z]+-[0-9a-z]{4}$/);
    expect(name.startsWith(`vaas-${hash.slice(0, 16)}-${now.getTime().toString(36)}-`)).toBe(true);
  });

  it('names two loads differently', () => {
    const hash = vclContentHash('vcl 4.1;');
    const now = new Date();
    const names = new Set(Array.from({ length: 50 }, () => vclNameFor(hash, now)));

    expect(names.size).toBeGreaterThan(45);
  });

  it('reads the hash back from a name', () => {
    const hash = vclContentHash('vcl 4.1;');

    expect(hashFromVclName(vclNameFor(hash, new Date()))).toBe(hash.slice(0, 16));
  });

  it('reads no hash from other names', () => {
    expect(hashFromVclName('boot')).toBeUndefined();
    expect(hashFromVclName('vaas-xyz')).toBeUndefined();
  });
});
