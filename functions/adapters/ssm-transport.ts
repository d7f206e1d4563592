// VarnishTransport over SSM Run Command: sends AWS-RunShellScript with agent/ssm/apply-vcl.sh to the
// EC2 instance and waits for its result. Servers with an agentUrl keep the HTTP agent transport.
import {
  CancelCommandCommand,
  type GetCommandInvocationCommandOutput,
  GetCommandInvocationCommand,
  SendCommandCommand,
  type SSMClient,
  waitUntilCommandExecuted,
} from '@aws-sdk/client-ssm';
import { VarnishUnavailableError } from '../domain/errors.js';
import type { Server } from '../domain/model.js';
import type { VarnishAgent, VarnishTransport } from '../ports.js';
import { type AdminTarget, type CommandResult, createScriptAgent, readApplyVclScript } from './ssm-script.js';

export type { AdminTarget, CommandResult, CommandRunner, ScriptAgentOptions } from './ssm-script.js';
export { buildRunShellScriptCommands, createScriptAgent, readApplyVclScript, ScriptExit } from './ssm-script.js';

export const RUN_SHELL_SCRIPT_DOCUMENT = 'AWS-RunShellScript';

/** Smallest TimeoutSeconds that the SendCommand API accepts. */
const MIN_DELIVERY_TIMEOUT_SECONDS = 30;

export interface SsmTransportOptions {
  client: SSMClient;
  /**
   * Seconds that one command may take from SendCommand to its result. The same value is the
   * command's executionTimeout on the host and the deadline after which the script refuses to start.
   * A VCL load compiles C, so allow tens of seconds.
   */
  timeoutSeconds: number;
  /** How varnishadm reaches varnishd on the hosts; default: varnishadm's own default instance. */
  admin?: AdminTarget;
  /** Smallest and largest pause between GetCommandInvocation polls, in seconds. Default 1 and 5. */
  pollDelaySeconds?: { min: number; max: number };
  /** Largest JSON size of the commands parameter, in bytes; larger VCL travels in parts. */
  maxCommandBytes?: number;
  /** Directory on the hosts where VCL parts wait for the load. */
  stagingDir?: string;
  /** Text of apply-vcl.sh; default: read by readApplyVclScript() on first use. */
  script?: string;
  now?: () => Date;
}

/** Returns a transport for servers that have an instanceId. */
export function createSsmTransport(options: SsmTransportOptions): VarnishTransport {
  let script = options.script;
  const scriptText = () => {
    script ??= readApplyVclScript();
    return script;
  };

  return (server: Server): VarnishAgent => {
    const instanceId = server.instanceId;
    if (instanceId === undefined) {
      return unreachableAgent(`server ${server.id} has no instanceId, so SSM cannot reach it`);
    }

    return createScriptAgent(
      {
        script: scriptText,
        target: `instance ${instanceId}`,
        admin: options.admin,
        timeoutSeconds: options.timeoutSeconds,
        maxCommandBytes: options.maxCommandBytes,
        stagingDir: options.stagingDir,
        now: options.now,
      },
      (commands, comment) => runOverSsm(options, instanceId, commands, comment),
    );
  };
}

/** Picks the SSM transport for servers with an instanceId and the agent transport for those with an agentUrl. */
export function createRoutingTransport(transports: { agent: VarnishTransport; ssm: VarnishTransport }): VarnishTransport {
  return (server: Server): VarnishAgent => {
    if (server.instanceId !== undefined) {
      return transports.ssm(server);
    }
    if (server.agentUrl !== undefined) {
      return transports.agent(server);
    }
    return unreachableAgent(`server ${server.id} has neither agentUrl nor instanceId: set one of them`);
  };
}

/** Sends one AWS-RunShellScript command to one instance and waits for its result. */
async function runOverSsm(
  options: SsmTransportOptions,
  instanceId: string,
  commands: string[],
  comment: string,
): Promise<CommandResult> {
  const { client, timeoutSeconds } = options;
  let commandId: string | undefined;
  try {
    const sent = await client.send(
      new SendCommandCommand({
        DocumentName: RUN_SHELL_SCRIPT_DOCUMENT,
        InstanceIds: [instanceId],
        // The command does not start after this many seconds; apply-vcl.sh --not-after also checks.
        TimeoutSeconds: Math.max(MIN_DELIVERY_TIMEOUT_SECONDS, Math.ceil(timeoutSeconds)),
        Comment: comment.slice(0, 100),
        Parameters: { commands, executionTimeout: [String(Math.ceil(timeoutSeconds))] },
      }),
    );
    commandId = sent.Command?.CommandId;
  } catch (error) {
    throw new VarnishUnavailableError(`SendCommand to instance ${instanceId} failed: ${describeError(error)}`);
  }
  if (!commandId) {
    throw new VarnishUnavailableError(`SendCommand to instance ${instanceId} returned no command id`);
  }

  const invocation = { CommandId: commandId, InstanceId: instanceId };
  const delay = options.pollDelaySeconds ?? { min: 1, max: 5 };
  try {
    const waited = await waitUntilCommandExecuted(
      { client, maxWaitTime: timeoutSeconds, minDelay: delay.min, maxDelay: delay.max },
      invocation,
    );
    return resultOf(waited.reason as GetCommandInvocationCommandOutput);
  } catch (error) {
    if ((error as Error).name === 'TimeoutError') {
      await cancelQuietly(client, commandId, instanceId);
      throw new VarnishUnavailableError(
        `SSM command ${commandId} on instance ${instanceId} returned no result within ${timeoutSeconds} s; it was cancelled`,
      );
    }
  }

  // The waiter throws for Failed, Cancelled and TimedOut; the invocation tells which and why.
  try {
    return resultOf(await client.send(new GetCommandInvocationCommand(invocation)));
  } catch (error) {
    throw new VarnishUnavailableError(
      `reading SSM command ${commandId} on instance ${instanceId} failed: ${describeError(error)}`,
    );
  }
}

function resultOf(output: GetCommandInvocationCommandOutput): CommandResult {
  return {
    status: output.Status ?? 'Unknown',
    details: output.StatusDetails,
    exitCode: output.ResponseCode ?? -1,
    stdout: output.StandardOutputContent ?? '',
    stderr: output.StandardErrorContent ?? '',
  };
}

/** Cancels a command that did not finish in time, so that it cannot run later; failures only matter less. */
async function cancelQuietly(client: SSMClient, commandId: string, instanceId: string): Promise<void> {
  try {
    await client.send(new CancelCommandCommand({ CommandId: commandId, InstanceIds: [instanceId] }));
  } catch {
    // The script's --not-after deadline stops a late start even when the cancel fails.
  }
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    return `${error.name}: ${error.message}`;
  }
  return String(error);
}

function unreachableAgent(message: string): VarnishAgent {
  const reject = () => Promise.reject(new VarnishUnavailableError(message));
  return { listVcls: reject, loadVcl: reject, useVcl: reject, discardVcl: reject };
}
