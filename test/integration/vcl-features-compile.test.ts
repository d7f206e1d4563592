// Renders probes, time profiles, datacenter groups, cookie hashing, routes of every kind and a
// template from hostile but valid input with maximum-length names. The VCL is compiled on a real
// varnishd 7.1 with its default compiler flags, and requests must reach the backends it picks.
// Varnish caches by URL and host, so every request that checks routing uses a path of its own.
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VarnishAdminClient } from '../../agent/admin-client.js';
import {
  type Backend,
  backendInput,
  type ClusterConfig,
  type Director,
  directorInput,
  type Probe,
  probeInput,
  type Route,
  routeInput,
  type Server,
  timeProfileInput,
  vclTemplateInput,
} from '../../functions/domain/model.js';
import { renderVcl, vclContentHash, vclNameFor } from '../../functions/domain/vcl.js';
import { clusterVariables } from '../../functions/domain/vcl-template.js';
import { type DemoBackend, startDemoBackend } from '../../local/demo-backend.js';
import { findVarnishd, startVarnishd, type VarnishdInstance } from '../../local/varnishd.js';

const varnishdPath = findVarnishd();
if (!varnishdPath) {
  console.warn('varnishd not found on PATH or in /usr/sbin: skipping the VCL feature compile tests');
}

/** Two 48-character names that differ only in - and _, so their identifiers differ only by number. */
const LONG_DASH = `Z${'-_'.repeat(23)}x`;
const LONG_UNDERSCORE = `Z${'__'.repeat(23)}x`;
const TOKEN_COOKIE = "a!#$%&'*+.^_`|~-z";

const server: Server = {
  id: 'server-1',
  cluster: 'cluster-1',
  address: '127.0.0.1',
  port: 6081,
  agentUrl: 'http://127.0.0.1:6085',
  status: 'active',
  datacenter: 'dc-a',
};

interface HttpResult {
  status: number;
  reason: string;
  backend: string | undefined;
  headers: Record<string, string | string[] | undefined>;
}

/** Sends a request with explicit headers, including Host, which fetch() does not allow to set. */
function send(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      { host: '127.0.0.1', port, path, method, headers: { Host: 'localhost', ...headers } },
      (response) => {
        response.resume();
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            reason: response.statusMessage ?? '',
            backend: response.headers['x-backend'] as string | undefined,
            headers: response.headers,
          }),
        );
      },
    );
    outgoing.on('error', reject);
    outgoing.end();
  });
}

describe.skipIf(!varnishdPath)('VCL features on varnishd', () => {
  let varnishd: VarnishdInstance;
  let admin: VarnishAdminClient;
  let alpha: DemoBackend;
  let beta: DemoBackend;
  let input: ClusterConfig;

  beforeAll(async () => {
    // Default compiler flags (-O2 -Werror), as in production.
    varnishd = await startVarnishd();
    admin = new VarnishAdminClient({
      host: '127.0.0.1',
      port: varnishd.adminPort,
      secret: await readFile(varnishd.secretFile),
    });
    alpha = await startDemoBackend({ name: 'alpha' });
    beta = await startDemoBackend({ name: 'beta' });
    input = hostileConfig(alpha.port, beta.port);
  });

  afterAll(async () => {
    admin?.close();
    await alpha?.close();
    await beta?.close();
    await varnishd?.stop();
  });

  async function activate(vcl: string): Promise<void> {
    const name = vclNameFor(vclContentHash(vcl), new Date());
    await admin.loadInline(name, vcl);
    await admin.use(name);
  }

  it('compiles hostile input with 48-character names', async () => {
    const vcl = renderVcl(input, server);

    await expect(activate(vcl)).resolves.toBeUndefined();
  });

  it('keeps every identifier unique and within 64 characters', () => {
    const vcl = renderVcl(input, server);
    const declared = [...vcl.matchAll(/^(?:probe|backend) (\S+) \{|\bnew (\S+) =/gm)].map(
      (match) => match[1] ?? match[2] ?? '',
    );

    expect(declared.length).toBeGreaterThan(10);
    expect(new Set(declared).size).toBe(declared.length);
    for (const identifier of declared) expect(identifier).toMatch(/^[A-Za-z][A-Za-z0-9_]{0,63}$/);
  });

  it('routes by a header with braces and comment marks', async () => {
    const result = await send(varnishd.httpPort, '/long1/header', { 'X-Route_Test': '}{ /* # //' });

    expect(result.backend).toBe('beta');
  });

  it('routes by a cookie with every token character', async () => {
    const result = await send(varnishd.httpPort, '/long1/cookie', {
      Cookie: `other=1; ${TOKEN_COOKIE}=v%20}`,
    });

    expect(result.backend).toBe('beta');
  });

  it('routes by the host', async () => {
    const result = await send(varnishd.httpPort, '/long1/page', { Host: 'route.example' });

    expect(result.backend).toBe('beta');
  });

  it('routes by the method', async () => {
    const result = await send(varnishd.httpPort, '/long1/method', {}, 'DELETE');

    expect(result.backend).toBe('beta');
  });

  it('prefers the local datacenter', async () => {
    const results = await Promise.all(
      [1, 2, 3, 4].map((index) => send(varnishd.httpPort, `/long1/local-${index}`)),
    );

    for (const result of results) expect(result.backend).toBe('alpha');
  });

  it('hashes by cookie in the local datacenter', async () => {
    const result = await send(varnishd.httpPort, '/long2/page', { Cookie: `${TOKEN_COOKIE}=user-1` });

    expect(result.backend).toBe('alpha');
  });

  it('fills template variables in strings', async () => {
    const result = await send(varnishd.httpPort, '/long1/template');

    expect(result.headers['x-env']).toBe('prod }{ /*');
    expect(result.headers['x-long']).toBe('} "');
  });

  it('runs the template recv block', async () => {
    const result = await send(varnishd.httpPort, '/long1/page', { 'X-Block': '1' });

    expect(result.status).toBe(418);
    expect(result.reason).toBe('prod }{ /*');
  });

  it('compiles the canary VCL of the same input', async () => {
    await activate(renderVcl(input, { ...server, id: 'server-2', canary: true }));
    const result = await send(varnishd.httpPort, '/beta-only/page');

    expect(result.status).toBe(503);
    expect(result.reason).toBe('No canary backend for this route');
  });

  it('serves a canary backend on the canary VCL', async () => {
    const result = await send(varnishd.httpPort, '/long1/canary');

    expect(result.backend).toBe('alpha');
  });
});

/** Builds the input with the API's own schemas, so only input that the API accepts is rendered. */
function hostileConfig(alphaPort: number, betaPort: number): ClusterConfig {
  const probes: Probe[] = [
    { id: 'p1', ...probeInput.parse({ name: LONG_DASH, url: "/health?a=}{&b=/*#'", startHealthy: true }) },
    {
      id: 'p2',
      ...probeInput.parse({
        name: LONG_UNDERSCORE,
        intervalSeconds: 1,
        timeoutSeconds: 0.5,
        startHealthy: true,
      }),
    },
  ];
  const director = (id: string, fields: Record<string, unknown>): Director => ({
    id,
    ...directorInput.parse({ clusters: ['cluster-1'], ...fields }),
  });
  const backend = (id: string, fields: Record<string, unknown>): Backend => ({
    id,
    ...backendInput.parse({ address: '127.0.0.1', ...fields }),
  });
  const route = (id: string, fields: Record<string, unknown>): Route => ({
    id,
    ...routeInput.parse({ clusters: ['cluster-1'], director: 'd-beta', ...fields }),
  });
  const routeName = (index: number) => `${LONG_DASH.slice(0, 47)}${index}`;

  return {
    cluster: {
      id: 'cluster-1',
      name: 'prod',
      template: 't1',
      variables: clusterVariables.parse({ env: 'prod }{ /*', long: '} ' }),
    },
    servers: [server],
    datacenters: [
      { id: 'dc-a', name: 'abcdefgh' },
      { id: 'dc-b', name: 'zzzzzzz9' },
    ],
    probes,
    timeProfiles: [{ id: 'tp1', ...timeProfileInput.parse({ name: LONG_DASH, maxConnections: 100_000 }) }],
    directors: [
      director('d-long1', {
        name: LONG_DASH,
        routeExpression: '^/long1/',
        preferLocalDatacenter: true,
        probe: 'p1',
        timeProfile: 'tp1',
      }),
      director('d-long2', {
        name: LONG_UNDERSCORE,
        routeExpression: '^/long2/',
        mode: 'hash',
        hashBy: 'cookie',
        hashCookie: TOKEN_COOKIE,
        preferLocalDatacenter: true,
      }),
      director('d-beta', { name: 'beta-only', mode: 'fallback', routeExpression: '^/beta-only/' }),
    ],
    backends: [
      backend('b1', { director: 'd-long1', port: alphaPort, datacenter: 'dc-a', tags: ['canary'] }),
      backend('b2', { director: 'd-long1', port: betaPort, datacenter: 'dc-b' }),
      backend('b3', { director: 'd-long2', port: alphaPort, datacenter: 'dc-a', weight: 100 }),
      backend('b4', {
        director: 'd-long2',
        port: betaPort,
        datacenter: 'dc-b',
        probe: 'p2',
        timeProfile: 'tp1',
      }),
      backend('b5', { director: 'd-beta', port: betaPort }),
    ],
    routes: [
      route('r0', {
        name: routeName(0),
        priority: 0,
        condition: { all: [{ field: 'url', operator: 'not_matches', value: '^/' }] },
      }),
      route('r1', {
        name: routeName(1),
        priority: 1,
        condition: {
          all: [{ field: 'header', name: 'X-Route_Test', operator: 'equals', value: '}{ /* # //' }],
        },
      }),
      route('r2', {
        name: routeName(2),
        priority: 2,
        condition: { all: [{ field: 'cookie', name: TOKEN_COOKIE, operator: 'equals', value: 'v%20}' }] },
      }),
      route('r3', {
        name: routeName(3),
        priority: 3,
        condition: {
          any: [
            { field: 'host', operator: 'equals', value: 'route.example' },
            { field: 'url', operator: 'matches', value: '^/ü/€%20}{{' },
            { field: 'method', operator: 'equals', value: 'DELETE' },
          ],
        },
      }),
    ],
    template: {
      id: 't1',
      ...vclTemplateInput.parse({
        name: LONG_DASH,
        blocks: {
          recv: 'if (req.http.X-Block) {\n  return (synth(418, "{{ env }}"));\n}',
          deliver:
            'set resp.http.X-Env = "{{ env }}"; # } {\nset resp.http.X-Long = {"{{long}}""};\n/* } */\n' +
            'set resp.http.X-Triple = """{ "quoted" }""";',
        },
      }),
    },
  };
}
