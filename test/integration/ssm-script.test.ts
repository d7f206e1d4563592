// apply-vcl.sh against real varnishd 7.1 instances. Each call builds exactly the commands parameter
// that the SSM transport sends. The test writes it to a file and starts it with `sh -c FILE`, as the
// SSM agent's aws:runShellScript plugin does, so only SendCommand and GetCommandInvocation are left out.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AdminTarget,
  buildRunShellScriptCommands,
  type CommandResult,
  type CommandRunner,
  createScriptAgent,
  readApplyVclScript,
  type ScriptAgentOptions,
  ScriptExit,
} from '../../functions/adapters/ssm-script.js';
import { VarnishUnavailableError, VclCompileError } from '../../functions/domain/errors.js';
import type { ClusterConfig, Server } from '../../functions/domain/model.js';
import { ClusterReloadError, reloadCluster } from '../../functions/domain/reload-cluster.js';
import { renderVcl, vclContentHash, vclNameFor } from '../../functions/domain/vcl.js';
import type { VarnishAgent, VarnishTransport } from '../../functions/ports.js';
import { type DemoBackend, startDemoBackend } from '../../local/demo-backend.js';
import { findFreePort, findVarnishd, startVarnishd, type VarnishdInstance } from '../../local/varnishd.js';

const varnishdPath = findVarnishd();
if (!varnishdPath) {
  console.warn('varnishd not found on PATH or in /usr/sbin: skipping the apply-vcl.sh integration tests');
}

const SCRIPT = readApplyVclScript();
const SIMPLE_VCL = 'vcl 4.1;\nbackend default none;\n';

interface Node {
  varnishd: VarnishdInstance;
  admin: AdminTarget;
  server: Server;
}

/** Runs the commands as the SSM agent does and reports the result as GetCommandInvocation would. */
async function runLikeSsm(commands: string[]): Promise<CommandResult> {
  const dir = await mkdtemp(join(tmpdir(), 'vaas-ssm-run-'));
  try {
    const file = join(dir, '_script.sh');
    await writeFile(file, `${commands.join('\n')}\n`, { mode: 0o700 });
    const { exitCode, stdout, stderr } = await runProcess('sh', ['-c', file]);
    return { status: exitCode === 0 ? 'Success' : 'Failed', exitCode, stdout, stderr };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function runProcess(
  command: string,
  args: string[],
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ exitCode: code ?? -1, stdout, stderr }));
  });
}

function adminArgs(admin: AdminTarget): string[] {
  return 'workDir' in admin ? ['-n', admin.workDir] : ['-T', admin.address, '-S', admin.secretFile];
}

function gzipBase64Lines(text: string): string[] {
  return (
    gzipSync(Buffer.from(text, 'utf8'))
      .toString('base64')
      .match(/.{1,76}/g) ?? []
  );
}

describe.skipIf(!varnishdPath)('apply-vcl.sh with varnishd', () => {
  const nodes: Node[] = [];
  const backends: DemoBackend[] = [];
  let stagingDir: string;
  let canaryDir: string;
  let closedPort: number;
  let sequence = 0;
  let probes = 0;

  beforeAll(async () => {
    stagingDir = await mkdtemp(join(tmpdir(), 'vaas-ssm-staging-'));
    canaryDir = await mkdtemp(join(tmpdir(), 'vaas-ssm-canary-'));
    for (const name of ['alpha', 'beta']) {
      backends.push(await startDemoBackend({ name }));
    }
    for (const [index, instanceId] of ['i-0aaaaaaaaaaaaaaa1', 'i-0aaaaaaaaaaaaaaa2'].entries()) {
      const varnishd = await startVarnishd({ fastCompile: true });
      nodes.push({
        varnishd,
        admin: { address: `127.0.0.1:${varnishd.adminPort}`, secretFile: varnishd.secretFile },
        server: {
          id: `server-${index + 1}`,
          cluster: 'cluster-1',
          address: '127.0.0.1',
          port: varnishd.httpPort,
          instanceId,
          status: 'active',
        },
      });
    }
    closedPort = await findFreePort();
  });

  afterAll(async () => {
    for (const node of nodes) {
      await node.varnishd.stop();
    }
    for (const backend of backends) {
      await backend.close();
    }
    await rm(stagingDir, { recursive: true, force: true });
    await rm(canaryDir, { recursive: true, force: true });
  });

  function node(index: number): Node {
    const found = nodes[index];
    if (!found) {
      throw new Error(`no varnishd node ${index}`);
    }
    return found;
  }

  function agentFor(
    target: Node,
    overrides: Partial<ScriptAgentOptions> = {},
    run: CommandRunner = runLikeSsm,
  ) {
    return createScriptAgent(
      {
        script: SCRIPT,
        target: `server ${target.server.id}`,
        admin: target.admin,
        timeoutSeconds: 60,
        stagingDir,
        ...overrides,
      },
      run,
    );
  }

  /** Runs apply-vcl.sh with arguments that the agent would reject before sending. */
  function runScript(target: Node, args: string[], input?: string[]): Promise<CommandResult> {
    return runLikeSsm(buildRunShellScriptCommands(SCRIPT, [...adminArgs(target.admin), ...args], input));
  }

  function uniqueName(prefix = 'vaas-test'): string {
    sequence += 1;
    return `${prefix}-${sequence}-${randomBytes(3).toString('hex')}`;
  }

  async function names(target: Node): Promise<string[]> {
    return (await agentFor(target).listVcls()).map((item) => item.name);
  }

  async function activeName(target: Node): Promise<string | undefined> {
    return (await agentFor(target).listVcls()).find((item) => item.status === 'active')?.name;
  }

  /** Fetches a fresh URL, so that no object cached under an older VCL is served. */
  async function fetchThrough(target: Node): Promise<Response> {
    probes += 1;
    return fetch(`http://127.0.0.1:${target.varnishd.httpPort}/probe-${probes}`);
  }

  function configFor(backend: DemoBackend, servers: Server[]): ClusterConfig {
    sequence += 1;
    return {
      cluster: { id: 'cluster-1', name: 'prod' },
      servers,
      directors: [
        {
          id: 'director-1',
          name: `web-${sequence}`,
          clusters: ['cluster-1'],
          mode: 'round_robin',
          router: 'url',
          routeExpression: '^/',
        },
      ],
      backends: [
        {
          id: 'backend-1',
          director: 'director-1',
          address: '127.0.0.1',
          port: backend.port,
          weight: 1,
          enabled: true,
        },
      ],
    };
  }

  async function loadAndUse(
    target: Node,
    vcl: string,
    agent: VarnishAgent = agentFor(target),
  ): Promise<string> {
    const name = vclNameFor(vclContentHash(vcl), new Date());
    await agent.loadVcl(name, vcl);
    await agent.useVcl(name);
    return name;
  }

  it('loads and activates a VCL that serves traffic', async () => {
    const target = node(0);
    const vcl = renderVcl(configFor(backends[0] as DemoBackend, [target.server]), target.server);

    const name = await loadAndUse(target, vcl);

    expect(await activeName(target)).toBe(name);
    const response = await fetchThrough(target);
    expect(response.status).toBe(200);
    expect(response.headers.get('x-backend')).toBe('alpha');
  });

  it('shows the active VCL and backend health', async () => {
    const target = node(0);
    const vcl = renderVcl(configFor(backends[0] as DemoBackend, [target.server]), target.server);
    const name = await loadAndUse(target, vcl);
    const agent = agentFor(target);

    const active = await agent.activeVcl?.();
    expect(active?.name).toBe(name);
    expect(active?.source).toBe(vcl);
    const health = (await agent.backendHealth?.()) ?? [];
    expect(health.filter((backend) => backend.vcl === name).length).toBeGreaterThan(0);
  });

  it('bans a cached URL', async () => {
    const target = node(0);
    const vcl = renderVcl(configFor(backends[0] as DemoBackend, [target.server]), target.server);
    await loadAndUse(target, vcl);
    const url = `http://127.0.0.1:${target.varnishd.httpPort}/cached-${randomBytes(4).toString('hex')}`;
    const hitsOf = async () => ((await fetch(url)).headers.get('x-varnish') ?? '').split(' ').length;

    await hitsOf();
    expect(await hitsOf()).toBe(2);
    await agentFor(target).purge?.({ path: new URL(url).pathname, headers: { host: new URL(url).host } });
    expect(await hitsOf()).toBe(1);
  });

  it('rejects a hostile ban path before the host runs it', async () => {
    const purge = agentFor(node(0)).purge?.({ path: '/x" || req.url ~ ".', headers: {} });
    await expect(purge).rejects.toThrow('must be a path');
  });

  it('reports the compiler message for a broken VCL', async () => {
    const name = uniqueName();
    const load = agentFor(node(0)).loadVcl(name, 'vcl 4.1;\nbackend default none\n');

    await expect(load).rejects.toThrow(VclCompileError);
    await expect(load).rejects.toThrow("('<vcl.inline>' Line 2 Pos 1)");
    await expect(load).rejects.toThrow('VCL compilation failed');
    expect(await names(node(0))).not.toContain(name);
  });

  it('keeps VCL lines that look like heredoc markers', async () => {
    const hex = randomBytes(16).toString('hex');
    const markerLines = ['EOF', 'END', 'VCL', `VAAS_${hex}`, `VAAS_SCRIPT_${hex}`, `VAAS_INPUT_${hex}`];
    const vcl = [
      'vcl 4.1;',
      'backend default none;',
      '/*',
      ...markerLines,
      '*/',
      'sub vcl_recv { return (synth(200, "tail")); }',
      'sub vcl_synth { set resp.http.X-Tail = "intact"; return (deliver); }',
      '',
    ].join('\n');

    await loadAndUse(node(0), vcl);

    const response = await fetchThrough(node(0));
    expect(response.headers.get('x-tail')).toBe('intact');
  });

  it('rejects hostile VCL names without running them', async () => {
    const canary = join(canaryDir, 'ran');
    const hostile = [
      `x'; touch ${canary}; '`,
      `$(touch ${canary})`,
      `\`touch ${canary}\``,
      `vaas-ok\ntouch ${canary}`,
      'vaas ok',
      '-n',
      '1vaas',
      '',
    ];
    const before = await names(node(0));

    for (const name of hostile) {
      const use = await runScript(node(0), ['use', name]);
      const load = await runScript(node(0), ['load', name], ['vcl 4.1;', 'backend default none;']);
      expect(use.exitCode, `use ${JSON.stringify(name)}`).toBe(ScriptExit.usage);
      expect(load.exitCode, `load ${JSON.stringify(name)}`).toBe(ScriptExit.usage);
    }

    expect(existsSync(canary)).toBe(false);
    expect(await names(node(0))).toEqual(before);
  });

  it('rejects an invalid name before running anything', async () => {
    const calls: string[][] = [];
    const recording: CommandRunner = async (commands) => {
      calls.push(commands);
      return runLikeSsm(commands);
    };

    await expect(agentFor(node(0), {}, recording).useVcl('x;y')).rejects.toThrow('invalid VCL name');
    expect(calls).toEqual([]);
  });

  it('discards older vaas VCLs after use and keeps others', async () => {
    const agent = agentFor(node(1));
    const older = [uniqueName('vaas-old'), uniqueName('vaas-old')];
    const foreign = uniqueName('manual');
    const next = uniqueName('vaas-next');
    for (const name of [...older, foreign, next]) {
      await agent.loadVcl(name, SIMPLE_VCL);
    }

    await agent.useVcl(next);

    const list = await agent.listVcls();
    expect(list).toContainEqual({ name: next, status: 'active' });
    expect(list).toContainEqual({ name: foreign, status: 'available' });
    expect(list.filter((item) => item.name.startsWith('vaas-') && item.name !== next)).toEqual([]);
  });

  it('treats discarding an unknown VCL as done', async () => {
    await expect(agentFor(node(1)).discardVcl(uniqueName())).resolves.toBeUndefined();
  });

  it('exits unchanged after its deadline', async () => {
    const name = uniqueName();
    const twoHoursAgo = () => new Date(Date.now() - 2 * 3600_000);

    const load = agentFor(node(0), { now: twoHoursAgo }).loadVcl(name, SIMPLE_VCL);

    await expect(load).rejects.toThrow(VarnishUnavailableError);
    await expect(load).rejects.toThrow('has passed, so nothing was changed');
    expect(await names(node(0))).not.toContain(name);
  });

  it('rejects a payload whose SHA-256 differs', async () => {
    const name = uniqueName();

    const result = await runScript(
      node(0),
      ['load', name, '--gzip-base64', '--sha256', '0'.repeat(64)],
      gzipBase64Lines(SIMPLE_VCL),
    );

    expect(result.exitCode).toBe(ScriptExit.damaged);
    expect(result.stderr).toContain('expected 0000');
    expect(await names(node(0))).not.toContain(name);
  });

  it('loads a VCL larger than one command in parts', async () => {
    const target = node(1);
    const runs: string[][] = [];
    const recording: CommandRunner = async (commands) => {
      runs.push(commands);
      return runLikeSsm(commands);
    };
    const rendered = renderVcl(configFor(backends[1] as DemoBackend, [target.server]), target.server);
    // Random hex compresses to about half, so the payload needs several 20 kB commands.
    const vcl = `${rendered}/* ${randomBytes(8000).toString('hex')} */\n`;

    await loadAndUse(target, vcl, agentFor(target, { maxCommandBytes: 20_000 }, recording));

    const stages = runs.filter((commands) => commands.some((line) => line.includes("'stage'")));
    expect(stages.length).toBeGreaterThan(1);
    expect((await fetchThrough(target)).headers.get('x-backend')).toBe('beta');
    expect(await readdir(stagingDir)).toEqual([]);
  });

  describe('reloadCluster', () => {
    const transport: VarnishTransport = (server) => {
      const target = nodes.find((candidate) => candidate.server.id === server.id);
      if (target) {
        return agentFor(target);
      }
      // A host whose varnishd admin port is closed.
      return agentFor(node(0), {
        admin: { address: `127.0.0.1:${closedPort}`, secretFile: node(0).varnishd.secretFile },
      });
    };

    function reload(servers: Server[], backend: DemoBackend) {
      const config = configFor(backend, servers);
      return reloadCluster({ servers, renderFor: (server) => renderVcl(config, server), transport });
    }

    it('applies the VCL on both servers', async () => {
      const servers = nodes.map((candidate) => candidate.server);

      const report = await reload(servers, backends[1] as DemoBackend);

      expect(report.servers.map((result) => result.status)).toEqual(['applied', 'applied']);
      for (const [index, target] of nodes.entries()) {
        expect(await activeName(target)).toBe(report.servers[index]?.vclName);
        expect((await fetchThrough(target)).headers.get('x-backend')).toBe('beta');
      }
    });

    it('keeps the old VCL everywhere when one server fails', async () => {
      const before = await Promise.all(nodes.map((target) => activeName(target)));
      const unreachable: Server = { ...node(0).server, id: 'server-3', instanceId: 'i-0aaaaaaaaaaaaaaa3' };
      const servers = [...nodes.map((target) => target.server), unreachable];

      const result = reload(servers, backends[0] as DemoBackend);

      await expect(result).rejects.toThrow(ClusterReloadError);
      await expect(result).rejects.toThrow(/server server-3 .*varnishadm failed/);
      for (const [index, target] of nodes.entries()) {
        expect(await activeName(target)).toBe(before[index]);
        expect((await fetchThrough(target)).headers.get('x-backend')).toBe('beta');
        const leftOver = (await agentFor(target).listVcls()).filter(
          (item) => item.name.startsWith('vaas-') && item.status === 'available',
        );
        expect(leftOver).toEqual([]);
      }
    });
  });
});
