import { describe, expect, it } from 'vitest';
import type {
  Backend,
  ClusterConfig,
  Director,
  Probe,
  Route,
  Server,
  TimeProfile,
  VclTemplate,
} from '../../functions/domain/model.js';
import { renderVcl, VclRenderError, vclBackendIdentifiers } from '../../functions/domain/vcl.js';
import type { RouteCondition } from '../../functions/domain/vcl-condition.js';

const server: Server = {
  id: 'server-1',
  cluster: 'cluster-1',
  address: '127.0.0.1',
  port: 6081,
  agentUrl: 'http://127.0.0.1:6085',
  status: 'active',
  datacenter: 'dc-eu',
};

const canaryServer: Server = { ...server, id: 'server-2', canary: true };

const healthProbe: Probe = {
  id: 'probe-1',
  name: 'health',
  url: '/health',
  expectedStatus: 204,
  intervalSeconds: 0.5,
  timeoutSeconds: 0.25,
  window: 5,
  threshold: 3,
  startHealthy: false,
};

const fastProfile: TimeProfile = {
  id: 'profile-1',
  name: 'fast',
  connectTimeoutSeconds: 1,
  firstByteTimeoutSeconds: 2.5,
  betweenBytesTimeoutSeconds: 3,
  maxConnections: 50,
};

function director(overrides: Partial<Director> & Pick<Director, 'id' | 'name'>): Director {
  return { clusters: ['cluster-1'], mode: 'round_robin', router: 'url', routeExpression: '^/', ...overrides };
}

function backend(overrides: Partial<Backend> & Pick<Backend, 'id' | 'director'>): Backend {
  return { address: '10.0.0.1', port: 8080, weight: 1, enabled: true, ...overrides };
}

function route(overrides: Partial<Route> & Pick<Route, 'id' | 'name' | 'director'>): Route {
  return {
    priority: 10,
    clusters: ['cluster-1'],
    condition: { all: [{ field: 'url', operator: 'matches', value: '^/r/' }] },
    ...overrides,
  };
}

function config(parts: Partial<ClusterConfig>): ClusterConfig {
  return {
    cluster: { id: 'cluster-1', name: 'prod' },
    servers: [server],
    directors: [],
    backends: [],
    datacenters: [
      { id: 'dc-eu', name: 'eu' },
      { id: 'dc-us', name: 'us' },
    ],
    probes: [healthProbe],
    timeProfiles: [fastProfile],
    ...parts,
  };
}

/** Returns the lines of the VCL with leading whitespace removed. */
function lines(vcl: string): string[] {
  return vcl.split('\n').map((line) => line.trim());
}

describe('probes and time profiles', () => {
  const input = config({
    directors: [director({ id: 'd1', name: 'api', probe: 'probe-1', timeProfile: 'profile-1' })],
    backends: [backend({ id: 'b1', director: 'd1' })],
  });

  it('declares a probe with every field', () => {
    const vcl = renderVcl(input, server);

    expect(vcl).toContain(
      [
        'probe p0_health {',
        '    .url = "/health";',
        '    .expected_response = 204;',
        '    .interval = 500ms;',
        '    .timeout = 250ms;',
        '    .window = 5;',
        '    .threshold = 3;',
        '}',
      ].join('\n'),
    );
  });

  it('sets initial to threshold for a probe that starts healthy', () => {
    const vcl = renderVcl({ ...input, probes: [{ ...healthProbe, startHealthy: true }] }, server);

    expect(lines(vcl)).toContain('.initial = 3;');
  });

  it('writes probe and timeouts into the backend', () => {
    const vcl = lines(renderVcl(input, server));

    expect(vcl).toContain('.probe = p0_health;');
    expect(vcl).toContain('.connect_timeout = 1s;');
    expect(vcl).toContain('.first_byte_timeout = 2500ms;');
    expect(vcl).toContain('.between_bytes_timeout = 3s;');
    expect(vcl).toContain('.max_connections = 50;');
  });

  it('declares no probe that no backend uses', () => {
    const unused = { ...healthProbe, id: 'probe-2', name: 'unused' };
    const vcl = renderVcl({ ...input, probes: [healthProbe, unused] }, server);

    expect(vcl).not.toContain('unused');
    expect(vcl.match(/^probe /gm)).toHaveLength(1);
  });

  it('lets a backend override the director probe and profile', () => {
    const other: Probe = { ...healthProbe, id: 'probe-2', name: 'deep', url: '/deep' };
    const slow: TimeProfile = { ...fastProfile, id: 'profile-2', name: 'slow', firstByteTimeoutSeconds: 90 };
    const vcl = renderVcl(
      {
        ...input,
        probes: [healthProbe, other],
        timeProfiles: [fastProfile, slow],
        backends: [backend({ id: 'b1', director: 'd1', probe: 'probe-2', timeProfile: 'profile-2' })],
      },
      server,
    );

    expect(lines(vcl)).toContain('.probe = p0_deep;');
    expect(lines(vcl)).toContain('.first_byte_timeout = 90s;');
    expect(vcl).not.toContain('p1_health');
  });

  it('leaves out a probe that was deleted', () => {
    const dangling = { ...input, probes: [], timeProfiles: [] };

    const vcl = renderVcl(dangling, server);
    expect(vcl).not.toContain('.probe =');
    expect(vcl).not.toContain('.first_byte_timeout');
  });
});

describe('datacenter preference', () => {
  const backends = [
    backend({ id: 'b1', director: 'd1', address: '10.0.0.1', datacenter: 'dc-eu' }),
    backend({ id: 'b2', director: 'd1', address: '10.0.0.2', datacenter: 'dc-us' }),
    backend({ id: 'b3', director: 'd1', address: '10.0.0.3' }),
  ];

  it('puts local backends before a fallback to the others', () => {
    const vcl = lines(
      renderVcl(
        config({ directors: [director({ id: 'd1', name: 'api', preferLocalDatacenter: true })], backends }),
        server,
      ),
    );

    expect(vcl).toContain('new l0_eu = directors.round_robin();');
    expect(vcl).toContain('l0_eu.add_backend(b0_0);');
    expect(vcl).toContain('new r0_other = directors.round_robin();');
    expect(vcl).toContain('r0_other.add_backend(b0_1);');
    expect(vcl).toContain('r0_other.add_backend(b0_2);');
    expect(vcl).toContain('new d0_api = directors.fallback();');
    expect(vcl.indexOf('d0_api.add_backend(l0_eu.backend());')).toBeLessThan(
      vcl.indexOf('d0_api.add_backend(r0_other.backend());'),
    );
    expect(vcl).toContain('set req.backend_hint = d0_api.backend();');
  });

  it('groups by the server datacenter', () => {
    const usServer = { ...server, datacenter: 'dc-us' };
    const vcl = lines(
      renderVcl(
        config({ directors: [director({ id: 'd1', name: 'api', preferLocalDatacenter: true })], backends }),
        usServer,
      ),
    );

    expect(vcl).toContain('l0_us.add_backend(b0_1);');
    expect(vcl).toContain('r0_other.add_backend(b0_0);');
  });

  it('keeps one director without the preference', () => {
    const vcl = lines(
      renderVcl(config({ directors: [director({ id: 'd1', name: 'api' })], backends }), server),
    );

    expect(vcl).toContain('new d0_api = directors.round_robin();');
    expect(vcl.join('\n')).not.toContain('l0_');
  });

  it('keeps one director for a server without datacenter', () => {
    const plain = { ...server, datacenter: undefined };
    const vcl = renderVcl(
      config({ directors: [director({ id: 'd1', name: 'api', preferLocalDatacenter: true })], backends }),
      plain,
    );

    expect(vcl).not.toContain('l0_');
    expect(lines(vcl)).toContain('new d0_api = directors.round_robin();');
  });

  it('keeps one director when every backend is local', () => {
    const vcl = renderVcl(
      config({
        directors: [director({ id: 'd1', name: 'api', preferLocalDatacenter: true })],
        backends: [backends[0] as Backend],
      }),
      server,
    );

    expect(vcl).not.toContain('r0_other');
  });

  it('falls back by health for a hash director', () => {
    const vcl = lines(
      renderVcl(
        config({
          directors: [director({ id: 'd1', name: 'api', mode: 'hash', preferLocalDatacenter: true })],
          backends,
        }),
        server,
      ),
    );

    expect(vcl).toContain('set req.backend_hint = l0_eu.backend(req.url);');
    expect(vcl).toContain('if (!std.healthy(req.backend_hint)) {');
    expect(vcl).toContain('set req.backend_hint = r0_other.backend(req.url);');
    expect(vcl.join('\n')).not.toContain('directors.fallback()');
  });
});

describe('hash by cookie', () => {
  const input = config({
    directors: [
      director({ id: 'd1', name: 'api', mode: 'hash', hashBy: 'cookie', hashCookie: 'session_id' }),
    ],
    backends: [backend({ id: 'b1', director: 'd1' })],
  });

  it('hashes the cookie value when the cookie is set', () => {
    const vcl = lines(renderVcl(input, server));

    expect(vcl).toContain('cookie.parse(req.http.cookie);');
    expect(vcl).toContain('if (cookie.isset("session_id")) {');
    expect(vcl).toContain('set req.backend_hint = d0_api.backend(cookie.get("session_id"));');
  });

  it('hashes the URL without the cookie', () => {
    const vcl = lines(renderVcl(input, server));

    expect(vcl).toContain('set req.backend_hint = d0_api.backend(req.url);');
  });

  it('parses no cookies when nothing reads them', () => {
    const vcl = renderVcl(config({ directors: [director({ id: 'd1', name: 'api' })] }), server);

    expect(vcl).not.toContain('cookie.parse');
  });
});

describe('canary servers', () => {
  const input = config({
    directors: [
      director({ id: 'd1', name: 'api' }),
      director({ id: 'd2', name: 'web', routeExpression: '^/web/' }),
    ],
    backends: [
      backend({ id: 'b1', director: 'd1', address: '10.0.0.1', tags: ['canary'] }),
      backend({ id: 'b2', director: 'd1', address: '10.0.0.2', tags: ['stable'] }),
      backend({ id: 'b3', director: 'd2', address: '10.0.0.3' }),
    ],
  });

  it('gets only backends tagged canary', () => {
    const vcl = renderVcl(input, canaryServer);

    expect(vcl).toContain('"10.0.0.1"');
    expect(vcl).not.toContain('"10.0.0.2"');
    expect(vcl).not.toContain('"10.0.0.3"');
  });

  it('answers 503 for a director without canary backends', () => {
    const vcl = lines(renderVcl(input, canaryServer));

    expect(vcl).toContain('return (synth(503, "No canary backend for this route"));');
  });

  it('leaves other servers every backend', () => {
    const vcl = renderVcl(input, server);

    expect(vcl).toContain('"10.0.0.1"');
    expect(vcl).toContain('"10.0.0.2"');
    expect(vcl).toContain('"10.0.0.3"');
  });
});

describe('routes', () => {
  const directors = [
    director({ id: 'd1', name: 'api', routeExpression: '^/api/' }),
    director({ id: 'd2', name: 'web' }),
  ];
  const backends = [backend({ id: 'b1', director: 'd1' }), backend({ id: 'b2', director: 'd2' })];

  it('tries routes by priority, then name, before directors', () => {
    const routes = [
      route({
        id: 'r1',
        name: 'zeta',
        director: 'd2',
        priority: 5,
        condition: { all: [{ field: 'url', operator: 'matches', value: '^/z' }] },
      }),
      route({
        id: 'r2',
        name: 'alpha',
        director: 'd1',
        priority: 5,
        condition: { all: [{ field: 'url', operator: 'matches', value: '^/a' }] },
      }),
      route({
        id: 'r3',
        name: 'first',
        director: 'd2',
        priority: 1,
        condition: { all: [{ field: 'url', operator: 'equals', value: '/f' }] },
      }),
    ];
    const vcl = lines(renderVcl(config({ directors, backends, routes }), server));

    expect(vcl).toContain('if (req.url == "/f") {');
    expect(vcl.indexOf('if (req.url == "/f") {')).toBeLessThan(vcl.indexOf('} elsif (req.url ~ "^/a") {'));
    expect(vcl.indexOf('} elsif (req.url ~ "^/a") {')).toBeLessThan(
      vcl.indexOf('} elsif (req.url ~ "^/z") {'),
    );
    expect(vcl.indexOf('} elsif (req.url ~ "^/z") {')).toBeLessThan(
      vcl.indexOf('} elsif (req.url ~ "^/api/") {'),
    );
  });

  it('renders every field and operator', () => {
    const condition = {
      all: [
        { field: 'url', operator: 'not_matches', value: '^/static/' },
        { field: 'host', operator: 'equals', value: 'www.example.com' },
        { field: 'method', operator: 'equals', value: 'GET' },
        { field: 'header', name: 'X-Beta', operator: 'matches', value: '^(1|yes)$' },
        { field: 'cookie', name: 'ab_test', operator: 'equals', value: 'b' },
      ],
    } satisfies RouteCondition;
    const vcl = renderVcl(
      config({ directors, backends, routes: [route({ id: 'r1', name: 'all', director: 'd2', condition })] }),
      server,
    );

    expect(vcl).toContain(
      'if (req.url !~ "^/static/" && req.http.host == "www.example.com" && req.method == "GET" && ' +
        'req.http.X-Beta ~ "^(1|yes)$" && cookie.get("ab_test") == "b") {',
    );
    expect(lines(vcl)).toContain('cookie.parse(req.http.cookie);');
  });

  it('joins any with or', () => {
    const condition = {
      any: [
        { field: 'url', operator: 'matches', value: '^/a' },
        { field: 'url', operator: 'matches', value: '^/b' },
      ],
    } satisfies RouteCondition;
    const vcl = renderVcl(
      config({ directors, backends, routes: [route({ id: 'r1', name: 'any', director: 'd2', condition })] }),
      server,
    );

    expect(vcl).toContain('if (req.url ~ "^/a" || req.url ~ "^/b") {');
  });

  it('skips routes of other clusters', () => {
    const routes = [route({ id: 'r1', name: 'other', director: 'd2', clusters: ['cluster-2'] })];
    const vcl = renderVcl(config({ directors, backends, routes }), server);

    expect(vcl).not.toContain('^/r/');
  });

  it('answers 503 for a route to a director without backends', () => {
    const routes = [route({ id: 'r1', name: 'empty', director: 'd3' })];
    const vcl = lines(
      renderVcl(
        config({ directors: [...directors, director({ id: 'd3', name: 'empty' })], backends, routes }),
        server,
      ),
    );

    expect(vcl[vcl.indexOf('if (req.url ~ "^/r/") {') + 1]).toBe(
      'return (synth(503, "No backend available for this route"));',
    );
  });
});

describe('templates', () => {
  const template: VclTemplate = {
    id: 'template-1',
    name: 'base',
    blocks: {
      deliver: 'set resp.http.X-Env = "{{ env }}";',
      recv: 'if (req.url ~ "^/admin") {\n  return (synth(403, "{{reason}}"));\n}',
    },
  };
  const input = config({
    cluster: {
      id: 'cluster-1',
      name: 'prod',
      template: 'template-1',
      variables: { env: 'prod', reason: 'No' },
    },
    directors: [director({ id: 'd1', name: 'api' })],
    backends: [backend({ id: 'b1', director: 'd1' })],
    template,
  });

  it('fills placeholders from the cluster variables', () => {
    const vcl = renderVcl(input, server);

    expect(vcl).toContain('sub vcl_deliver {\nset resp.http.X-Env = "prod";\n}');
    expect(vcl).toContain('sub vcl_recv {\nif (req.url ~ "^/admin") {\n  return (synth(403, "No"));\n}\n}');
  });

  it('keeps block text unchanged', () => {
    const text = 'synthetic({"line 1\n    line 2  \n"});';
    const vcl = renderVcl({ ...input, template: { ...template, blocks: { synth: text } } }, server);

    expect(vcl).toContain(`sub vcl_synth {\n${text}\n}`);
  });

  it('adds the recv block after the routing', () => {
    const vcl = renderVcl(input, server);

    expect(vcl.indexOf('return (synth(404, "No route"));')).toBeLessThan(vcl.lastIndexOf('sub vcl_recv {'));
  });

  it('throws for an undefined variable', () => {
    const missing = { ...input, cluster: { ...input.cluster, variables: { env: 'prod' } } };

    expect(() => renderVcl(missing, server)).toThrow(VclRenderError);
  });

  it('throws for a variable that closes the block', () => {
    const closing = {
      ...input,
      template: { ...template, blocks: { deliver: 'set resp.http.X = {{ env }};' } },
    };
    const hostile = {
      ...closing,
      cluster: { ...closing.cluster, variables: { env: '1; } sub vcl_init {' } },
    };

    expect(() => renderVcl(hostile, server)).toThrow(VclRenderError);
  });
});

describe('identifiers', () => {
  it('stay unique and short with 48-character names', () => {
    const long = `a${'-'.repeat(46)}`;
    const names = [`${long}1`, `${long.replaceAll('-', '_')}1`, `${long}2`];
    const probes = names.map((name, index) => ({ ...healthProbe, id: `p${index}`, name }));
    const directors = names.map((name, index) =>
      director({ id: `d${index}`, name, preferLocalDatacenter: true, probe: `p${index}` }),
    );
    const backends = directors.flatMap((item) => [
      backend({ id: `${item.id}-local`, director: item.id, datacenter: 'dc-eu' }),
      backend({ id: `${item.id}-remote`, director: item.id, datacenter: 'dc-us' }),
    ]);
    const datacenters = [
      { id: 'dc-eu', name: 'abcdefgh' },
      { id: 'dc-us', name: 'zz' },
    ];
    const vcl = renderVcl(config({ directors, backends, probes, datacenters }), server);
    const declared = [...vcl.matchAll(/^(?:probe|backend) (\S+) \{|\bnew (\S+) =/gm)].map(
      (match) => match[1] ?? match[2] ?? '',
    );

    expect(declared).toHaveLength(3 + 6 + 9);
    expect(new Set(declared).size).toBe(declared.length);
    for (const identifier of declared) expect(identifier).toMatch(/^[A-Za-z][A-Za-z0-9_]{0,63}$/);
  });

  it('maps backend identifiers to backend ids', () => {
    const input = config({
      directors: [director({ id: 'd1', name: 'api' })],
      backends: [backend({ id: 'b2', director: 'd1' }), backend({ id: 'b1', director: 'd1' })],
    });

    expect(vclBackendIdentifiers(input, server)).toEqual([
      { identifier: 'b0_0', backendId: 'b1', directorId: 'd1' },
      { identifier: 'b0_1', backendId: 'b2', directorId: 'd1' },
    ]);
  });
});

describe('defence in depth', () => {
  const directors = [director({ id: 'd1', name: 'api' })];
  const backends = [backend({ id: 'b1', director: 'd1', probe: 'probe-1' })];
  const hostileRoutes: Route['condition'][] = [
    { all: [{ field: 'url', operator: 'matches', value: '^/a" || "' }] },
    { all: [{ field: 'url', operator: 'equals', value: '/a\nsub vcl_init {' }] },
    { all: [{ field: 'header', name: 'X-A == "" || req.http.B', operator: 'equals', value: 'x' }] },
    { all: [{ field: 'cookie', name: 'a")) || ("', operator: 'equals', value: 'x' }] },
    { all: [] },
  ];

  for (const condition of hostileRoutes) {
    it(`throws for condition ${JSON.stringify(condition)}`, () => {
      const input = config({
        directors,
        routes: [route({ id: 'r1', name: 'bad', director: 'd1', condition })],
      });

      expect(() => renderVcl(input, server)).toThrow(VclRenderError);
    });
  }

  for (const url of ['/health"; }', '/a b', 'health', '/\u0000']) {
    it(`throws for probe url ${JSON.stringify(url)}`, () => {
      const input = config({ directors, backends, probes: [{ ...healthProbe, url }] });

      expect(() => renderVcl(input, server)).toThrow(VclRenderError);
    });
  }

  it('throws for a datacenter name that is no identifier', () => {
    const input = config({
      directors: [director({ id: 'd1', name: 'api', preferLocalDatacenter: true })],
      datacenters: [{ id: 'dc-eu', name: 'eu = 1;' }],
    });

    expect(() => renderVcl(input, server)).toThrow(VclRenderError);
  });

  it('throws for a hash cookie name with a quote', () => {
    const input = config({
      directors: [director({ id: 'd1', name: 'api', mode: 'hash', hashBy: 'cookie', hashCookie: 'a"b' })],
      backends: [backend({ id: 'b1', director: 'd1' })],
    });

    expect(() => renderVcl(input, server)).toThrow(VclRenderError);
  });
});
