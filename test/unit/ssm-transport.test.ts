// SSM transport against a mocked SSMClient (aws-sdk-client-mock). It is a mock because no emulator
// for SendCommand and GetCommandInvocation exists; test/integration/ssm-script.test.ts runs the
// same commands with sh against a real varnishd.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import {
  CancelCommandCommand,
  GetCommandInvocationCommand,
  type GetCommandInvocationCommandOutput,
  SendCommandCommand,
  type SendCommandCommandInput,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  createRoutingTransport,
  createSsmTransport,
  RUN_SHELL_SCRIPT_DOCUMENT,
  type SsmTransportOptions,
} from '../../functions/adapters/ssm-transport.js';
import { VarnishUnavailableError, VclCompileError } from '../../functions/domain/errors.js';
import type { Server } from '../../functions/domain/model.js';
import type { VarnishAgent, VarnishTransport } from '../../functions/ports.js';

const SCRIPT = readFileSync(new URL('../../agent/ssm/apply-vcl.sh', import.meta.url), 'utf8');
const INSTANCE_ID = 'i-0123456789abcdef0';
const NOW = new Date('2030-01-02T03:04:05.000Z');
const NOW_SECONDS = Math.floor(NOW.getTime() / 1000);

const ssm = mockClient(SSMClient);
const client = new SSMClient({
  region: 'us-east-1',
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
});

const ssmServer: Server = {
  id: 'server-1',
  cluster: 'cluster-1',
  address: '10.0.0.5',
  port: 6081,
  instanceId: INSTANCE_ID,
  status: 'active',
};

function agentFor(overrides: Partial<SsmTransportOptions> = {}, server: Server = ssmServer): VarnishAgent {
  const transport = createSsmTransport({
    client,
    timeoutSeconds: 20,
    pollDelaySeconds: { min: 0.01, max: 0.02 },
    now: () => NOW,
    ...overrides,
  });
  return transport(server);
}

function invocation(output: Partial<GetCommandInvocationCommandOutput>): GetCommandInvocationCommandOutput {
  return {
    $metadata: {},
    CommandId: 'command-1',
    InstanceId: INSTANCE_ID,
    Status: 'Success',
    ResponseCode: 0,
    StandardOutputContent: '',
    StandardErrorContent: '',
    ...output,
  };
}

function sentInputs(): SendCommandCommandInput[] {
  return ssm.commandCalls(SendCommandCommand).map((call) => call.args[0].input);
}

function commandsOf(input: SendCommandCommandInput | undefined): string[] {
  return input?.Parameters?.commands ?? [];
}

/** Returns the line that runs apply-vcl.sh and the stdin lines that follow it. */
function scriptRun(commands: string[]): { line: string; input: string[] } {
  const index = commands.findIndex((line) => line.startsWith('sh "$vaas_dir/apply-vcl.sh"'));
  const line = commands[index] ?? '';
  const marker = /<<'(VAAS_INPUT_[0-9a-f]+)'$/.exec(line)?.[1];
  const end = marker ? commands.indexOf(marker, index + 1) : index + 1;
  return { line, input: commands.slice(index + 1, end) };
}

function decodeInput(lines: string[]): string {
  return gunzipSync(Buffer.from(lines.join(''), 'base64')).toString('utf8');
}

beforeEach(() => {
  ssm.reset();
  ssm.on(SendCommandCommand).resolves({ Command: { CommandId: 'command-1' } });
});

describe('createSsmTransport', () => {
  it('sends AWS-RunShellScript to the instance', async () => {
    ssm.on(GetCommandInvocationCommand).resolves(invocation({ StandardOutputContent: '[]' }));

    await agentFor().listVcls();

    const [input] = sentInputs();
    expect(input?.DocumentName).toBe(RUN_SHELL_SCRIPT_DOCUMENT);
    expect(input?.InstanceIds).toEqual([INSTANCE_ID]);
    expect(input?.TimeoutSeconds).toBe(30);
    expect(input?.Parameters?.executionTimeout).toEqual(['20']);
    expect(input?.Comment).toBe('vaas apply-vcl list');
  });

  it('embeds the repository script verbatim', async () => {
    ssm.on(GetCommandInvocationCommand).resolves(invocation({ StandardOutputContent: '[]' }));

    await agentFor().listVcls();

    const commands = commandsOf(sentInputs()[0]);
    const start = commands.indexOf('#!/bin/sh');
    const scriptLines = SCRIPT.replace(/\n$/, '').split('\n');
    expect(start).toBeGreaterThan(0);
    expect(commands.slice(start, start + scriptLines.length)).toEqual(scriptLines);
    expect(commands[start - 1]).toMatch(/^cat >"\$vaas_dir\/apply-vcl\.sh" <<'(VAAS_SCRIPT_[0-9a-f]{32})' /);
    expect(commands[start + scriptLines.length]).toMatch(/^VAAS_SCRIPT_[0-9a-f]{32}$/);
  });

  it('passes quoted arguments and the deadline', async () => {
    ssm.on(GetCommandInvocationCommand).resolves(invocation({ StandardOutputContent: '[]' }));

    await agentFor({ admin: { address: '127.0.0.1:6082', secretFile: '/etc/varnish/secret' } }).listVcls();

    const { line } = scriptRun(commandsOf(sentInputs()[0]));
    expect(line).toBe(
      `sh "$vaas_dir/apply-vcl.sh" '-t' '20' '--not-after' '${NOW_SECONDS + 20}' ` +
        `'-T' '127.0.0.1:6082' '-S' '/etc/varnish/secret' 'list' </dev/null`,
    );
  });

  it('returns the VCL list from stdout', async () => {
    const list = [
      { name: 'boot', status: 'available' },
      { name: 'vaas-0123456789abcdef-abc-wxyz', status: 'active' },
    ];
    ssm.on(GetCommandInvocationCommand).resolves(invocation({ StandardOutputContent: JSON.stringify(list) }));

    await expect(agentFor().listVcls()).resolves.toEqual(list);
  });

  it('polls until the command finishes', async () => {
    ssm
      .on(GetCommandInvocationCommand)
      .resolvesOnce(invocation({ Status: 'Pending', ResponseCode: -1 }))
      .resolvesOnce(invocation({ Status: 'InProgress', ResponseCode: -1 }))
      .resolves(invocation({ StandardOutputContent: '[]' }));

    await expect(agentFor().listVcls()).resolves.toEqual([]);
    expect(ssm.commandCalls(GetCommandInvocationCommand)).toHaveLength(3);
  });

  it('sends the VCL as gzip and base64 with its SHA-256', async () => {
    ssm.on(GetCommandInvocationCommand).resolves(invocation({}));
    const vcl = 'vcl 4.1;\nbackend default none;\n';

    await agentFor().loadVcl('vaas-0123456789abcdef-abc-wxyz', vcl);

    const { line, input } = scriptRun(commandsOf(sentInputs()[0]));
    const digest = createHash('sha256').update(vcl).digest('hex');
    expect(line).toContain(`'load' 'vaas-0123456789abcdef-abc-wxyz' '--gzip-base64' '--sha256' '${digest}'`);
    expect(decodeInput(input)).toBe(vcl);
  });

  it('maps exit status 65 to VclCompileError', async () => {
    const message = "Message from VCC-compiler:\nExpected ';' got 'vcl'\n('<vcl.inline>' Line 2 Pos 1)";
    ssm
      .on(GetCommandInvocationCommand)
      .resolves(invocation({ Status: 'Failed', ResponseCode: 65, StandardOutputContent: message }));

    const load = agentFor().loadVcl('vaas-broken', 'vcl 4.1;\nbackend default none\n');

    await expect(load).rejects.toThrow(VclCompileError);
    await expect(load).rejects.toThrow(message);
  });

  it('maps an undeliverable command to VarnishUnavailableError', async () => {
    ssm
      .on(GetCommandInvocationCommand)
      .resolves(invocation({ Status: 'Failed', StatusDetails: 'Undeliverable', ResponseCode: -1 }));

    const use = agentFor().useVcl('vaas-next');

    await expect(use).rejects.toThrow(VarnishUnavailableError);
    await expect(use).rejects.toThrow(
      `use vaas-next on instance ${INSTANCE_ID} failed: SSM status Failed (Undeliverable)`,
    );
  });

  it('maps a script failure with its stderr', async () => {
    ssm.on(GetCommandInvocationCommand).resolves(
      invocation({
        Status: 'Failed',
        ResponseCode: 69,
        StandardErrorContent: 'apply-vcl: varnishadm failed with exit status 2: Connection refused',
      }),
    );

    const use = agentFor().useVcl('vaas-next');

    await expect(use).rejects.toThrow(VarnishUnavailableError);
    await expect(use).rejects.toThrow('exit status 69: apply-vcl: varnishadm failed');
  });

  it('maps a timeout and cancels the command', async () => {
    ssm.on(GetCommandInvocationCommand).resolves(invocation({ Status: 'InProgress', ResponseCode: -1 }));
    ssm.on(CancelCommandCommand).resolves({});

    const list = agentFor({ timeoutSeconds: 0.2 }).listVcls();

    await expect(list).rejects.toThrow(VarnishUnavailableError);
    await expect(list).rejects.toThrow(`on instance ${INSTANCE_ID} returned no result within 0.2 s`);
    expect(ssm.commandCalls(CancelCommandCommand)[0]?.args[0].input).toEqual({
      CommandId: 'command-1',
      InstanceIds: [INSTANCE_ID],
    });
  });

  it('maps a SendCommand error', async () => {
    const error = Object.assign(new Error('Instances [[i-0123456789abcdef0]] not in a valid state'), {
      name: 'InvalidInstanceId',
    });
    ssm.on(SendCommandCommand).rejects(error);

    const list = agentFor().listVcls();

    await expect(list).rejects.toThrow(VarnishUnavailableError);
    await expect(list).rejects.toThrow(`SendCommand to instance ${INSTANCE_ID} failed: InvalidInstanceId`);
  });

  it('treats exit status 66 on discard as discarded', async () => {
    ssm.on(GetCommandInvocationCommand).resolves(invocation({ Status: 'Failed', ResponseCode: 66 }));

    await expect(agentFor().discardVcl('vaas-gone')).resolves.toBeUndefined();
  });

  it('rejects an invalid VCL name before sending', async () => {
    await expect(agentFor().useVcl("x'; reboot; '")).rejects.toThrow('invalid VCL name');
    expect(sentInputs()).toHaveLength(0);
  });

  it('rejects a server without instanceId', async () => {
    const { instanceId: _unused, ...withoutInstance } = ssmServer;

    await expect(agentFor({}, withoutInstance).listVcls()).rejects.toThrow(VarnishUnavailableError);
    expect(sentInputs()).toHaveLength(0);
  });

  it('rejects a timeout below the poll delay', () => {
    const create = () =>
      createSsmTransport({ client, timeoutSeconds: 1, pollDelaySeconds: { min: 2, max: 5 } });

    expect(create).toThrow(RangeError);
    expect(create).toThrow('invalid timeoutSeconds 1');
  });

  it('sends a large VCL in parts', async () => {
    ssm.on(GetCommandInvocationCommand).resolves(invocation({}));
    const maxCommandBytes = 24_000;
    // Random hex does not compress much, so the payload needs several parts.
    const vcl = `vcl 4.1;\nbackend default none;\n/* ${randomBytes(12_000).toString('hex')} */\n`;

    await agentFor({ maxCommandBytes }).loadVcl('vaas-large', vcl);

    const inputs = sentInputs();
    const runs = inputs.map((input) => scriptRun(commandsOf(input)));
    const stages = runs.filter((run) => run.line.includes("'stage'"));
    const uploadId = /'stage' '([0-9a-f]{24})' '0'/.exec(stages[0]?.line ?? '')?.[1];
    expect(stages.length).toBeGreaterThan(1);
    expect(runs.at(-1)?.line).toContain(`'--staged' '${uploadId}' '--parts' '${stages.length}'`);
    expect(decodeInput(stages.flatMap((stage) => stage.input))).toBe(vcl);
    for (const input of inputs) {
      expect(Buffer.byteLength(JSON.stringify(commandsOf(input)))).toBeLessThanOrEqual(maxCommandBytes);
    }
  });
});

describe('createRoutingTransport', () => {
  function recordingTransport(calls: string[], label: string): VarnishTransport {
    return (server) => {
      calls.push(`${label}:${server.id}`);
      return {
        listVcls: async () => [],
        loadVcl: async () => {},
        useVcl: async () => {},
        discardVcl: async () => {},
      };
    };
  }

  it('uses SSM for a server with instanceId', () => {
    const calls: string[] = [];
    const transport = createRoutingTransport({
      agent: recordingTransport(calls, 'agent'),
      ssm: recordingTransport(calls, 'ssm'),
    });

    transport(ssmServer);

    expect(calls).toEqual(['ssm:server-1']);
  });

  it('uses the agent for a server with agentUrl', () => {
    const calls: string[] = [];
    const transport = createRoutingTransport({
      agent: recordingTransport(calls, 'agent'),
      ssm: recordingTransport(calls, 'ssm'),
    });
    const { instanceId: _unused, ...rest } = ssmServer;

    transport({ ...rest, id: 'server-2', agentUrl: 'http://10.0.0.6:6085' });

    expect(calls).toEqual(['agent:server-2']);
  });

  it('rejects a server with neither', async () => {
    const calls: string[] = [];
    const transport = createRoutingTransport({
      agent: recordingTransport(calls, 'agent'),
      ssm: recordingTransport(calls, 'ssm'),
    });
    const { instanceId: _unused, ...rest } = ssmServer;

    await expect(transport(rest).listVcls()).rejects.toThrow('has neither agentUrl nor instanceId');
    expect(calls).toEqual([]);
  });
});
