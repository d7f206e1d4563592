// Renders VCL from hostile but valid input and compiles it on a real varnishd 7.1 with its default
// compiler flags, then checks that the routes behave as rendered.
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VarnishAdminClient } from '../../agent/admin-client.js';
import { VclCompileError } from '../../functions/domain/errors.js';
import {
  type Backend,
  backendInput,
  type ClusterConfig,
  type Director,
  directorInput,
  type Server,
} from '../../functions/domain/model.js';
import { renderVcl, vclContentHash, vclNameFor } from '../../functions/domain/vcl.js';
import { type DemoBackend, startDemoBackend } from '../../local/demo-backend.js';
import { findVarnishd, startVarnishd, type VarnishdInstance } from '../../local/varnishd.js';

const varnishdPath = findVarnishd();
if (!varnishdPath) {
  console.warn('varnishd not found on PATH or in /usr/sbin: skipping the VCL compile tests');
}

const LONG_NAME = `Z${'-_'.repeat(23)}x`;

const server: Server = {
  id: 'server-1',
  cluster: 'cluster-1',
  address: '127.0.0.1',
  port: 6081,
  agentUrl: 'http://127.0.0.1:6085',
  status: 'active',
};

/** Parses the input with the API's own schemas, so only input that the API accepts is rendered. */
function director(id: string, input: Record<string, unknown>): Director {
  return { id, ...directorInput.parse({ clusters: ['cluster-1'], ...input }) };
}

function backend(id: string, input: Record<string, unknown>): Backend {
  return { id, ...backendInput.parse(input) };
}

function config(directors: Director[], backends: Backend[]): ClusterConfig {
  return { cluster: { id: 'cluster-1', name: 'prod' }, servers: [server], directors, backends };
}

interface HttpResult {
  status: number;
  reason: string;
  backend: string | undefined;
}

/** Sends GET with an explicit Host header, which fetch() does not allow to set. */
function get(port: number, path: string, host = 'localhost'): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: '127.0.0.1', port, path, headers: { Host: host } }, (response) => {
      response.resume();
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          reason: response.statusMessage ?? '',
          backend: response.headers['x-backend'] as string | undefined,
        }),
      );
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

describe.skipIf(!varnishdPath)('rendered VCL on varnishd', () => {
  let varnishd: VarnishdInstance;
  let admin: VarnishAdminClient;
  let alpha: DemoBackend;
  let beta: DemoBackend;

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
  });

  afterAll(async () => {
    admin?.close();
    await alpha?.close();
    await beta?.close();
    await varnishd?.stop();
  });

  async function activate(input: ClusterConfig): Promise<void> {
    const vcl = renderVcl(input, server);
    const name = vclNameFor(vclContentHash(vcl), new Date());
    await admin.loadInline(name, vcl);
    await admin.use(name);
  }

  function hostileConfig(): ClusterConfig {
    return config(
      [
        director('d-braces', { name: LONG_NAME, routeExpression: '^/a{2,3}[{}]\\{x\\}' }),
        director('d-case', {
          name: 'a-b',
          mode: 'random',
          routeExpression: '^/[Cc][Aa][Ss][Ee]/(foo|bar)+$',
        }),
        director('d-host', {
          name: 'a_b',
          mode: 'hash',
          router: 'host',
          routeExpression: '^(www\\.)?example\\.(com|org)(:\\d+)?$',
        }),
        director('d-unicode', { name: 'unicode', mode: 'fallback', routeExpression: '^/ü/€%20}{{' }),
        director('d-empty', { name: 'empty', routeExpression: '^/empty(/.*)?$' }),
      ],
      [
        backend('b1', { director: 'd-braces', address: '127.0.0.1', port: alpha.port }),
        backend('b2', { director: 'd-braces', address: '::1', port: 65_535 }),
        backend('b3', { director: 'd-case', address: '127.0.0.1', port: beta.port, weight: 100 }),
        backend('b4', { director: 'd-host', address: '127.0.0.1', port: beta.port, weight: 3 }),
        backend('b5', { director: 'd-host', address: '2001:db8::1', port: 80, weight: 0 }),
        backend('b6', { director: 'd-unicode', address: '127.0.0.1', port: alpha.port }),
        backend('b7', { director: 'd-unicode', address: 'fe80::1', port: 8080 }),
        backend('b8', { director: 'd-unicode', address: '::ffff:10.0.0.1', port: 8080 }),
        backend('b9', { director: 'd-empty', address: '10.0.0.9', port: 80, enabled: false }),
      ],
    );
  }

  it('compiles hostile but valid input', async () => {
    await expect(activate(hostileConfig())).resolves.toBeUndefined();
  });

  it('routes a url regex with braces', async () => {
    const result = await get(varnishd.httpPort, '/aa{{x}');

    expect(result.status).toBe(200);
    expect(result.backend).toBe('alpha');
  });

  it('routes a url regex with classes and groups', async () => {
    const result = await get(varnishd.httpPort, '/CASE/foobar');

    expect(result.backend).toBe('beta');
  });

  it('routes by host', async () => {
    const result = await get(varnishd.httpPort, '/anything', 'www.example.org');

    expect(result.backend).toBe('beta');
  });

  it('answers 503 for a route without backends', async () => {
    const result = await get(varnishd.httpPort, '/empty/page');

    expect(result.status).toBe(503);
    expect(result.reason).toBe('No backend available for this route');
  });

  it('answers 404 when no route matches', async () => {
    const result = await get(varnishd.httpPort, '/nowhere');

    expect(result.status).toBe(404);
    expect(result.reason).toBe('No route');
  });

  it('fails at load for a regex that JavaScript accepts and PCRE2 rejects', async () => {
    // NOTE: the API validates route expressions with JavaScript's RegExp while varnishd compiles
    // them with PCRE2, so this input passes validation and only fails when a reload compiles it.
    const input = config([director('d-lookbehind', { name: 'lookbehind', routeExpression: '(?<=a+)b' })], []);

    await expect(activate(input)).rejects.toThrow(VclCompileError);
    await expect(activate(input)).rejects.toThrow(/lookbehind assertion is not fixed length/);
  });

  it('compiles a VCL without directors', async () => {
    await activate(config([], []));

    expect((await get(varnishd.httpPort, '/')).status).toBe(404);
  });

  it('compiles a VCL whose only director has no backend', async () => {
    await activate(config([director('d-empty', { name: 'empty', routeExpression: '^/' })], []));

    expect((await get(varnishd.httpPort, '/')).status).toBe(503);
  });
});
