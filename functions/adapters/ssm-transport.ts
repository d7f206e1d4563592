// VarnishTransport over SSM Run Command: sends AWS-RunShellScript with agent/ssm/apply-vcl.sh to the
// EC2 instance and waits for its result. Servers with an agentUrl keep the HTTP agent transport.
import {
  CancelCommandCommand,
  GetCommandInvocationCommand,
  type GetCommandInvocationCommandOutput,
  SendCommandCommand,
  type SSMClient,
  waitUntilCommandExecuted,
} from '@aws-sdk/client-ssm';
import { VarnishUnavailableError } from '../domain/errors.js';
import type { Server } from '../domain/model.js';
import type { VarnishAgent, VarnishTransport } from '../ports.js';
import { type AdminTarget, type CommandResult, createScriptAgent, readApplyVclScript } from './ssm-script.js';

export type { AdminTarget, CommandResult, CommandRunner, ScriptAgentOptions } from './ssm-script.js';
export {
  buildRunShellScriptCommands,
  createScriptAgent,
  readApplyVclScript,
  ScriptExit,
} from './ssm-script.js';

export const RUN_SHELL_SCRIPT_DOCUMENT = 'AWS-RunShellScript';

/**
 * Lower bound for the TimeoutSeconds of SendCommand.
 * NOTE: 30 is the minimum that SendCommand is assumed to accept; no source checked here states it.
 */
const MIN_DELIVERY_TIMEOUT_SECONDS = 30;

const DEFAULT_POLL_DELAY_SECONDS = { min: 1, max: 5 };

export interface SsmTransportOptions {
  client: SSMClient;
  /**
   * Maximum seconds from SendCommand to the command's result. The same value is the command's
   * executionTimeout on the host, and apply-vcl.sh exits without changes when it starts later.
   * A VCL load compiles C, so allow tens of seconds.
   */
  timeoutSeconds: number;
  /** Admin endpoint of varnishd on the hosts; default: the instance that varnishadm finds by itself. */
  admin?: AdminTarget;
  /** Minimum and maximum pause between GetCommandInvocation polls, in seconds. Default 1 and 5. */
  pollDelaySeconds?: { min: number; max: number };
  /** Maximum JSON size of the commands parameter, in bytes. A larger VCL travels in parts. */
  maxCommandBytes?: number;
  /** Directory on the hosts where VCL parts wait for the load. */
  stagingDir?: string;
  /** Text of apply-vcl.sh. Default: read by readApplyVclScript() on first use. */
  script?: string;
  now?: () => Date;
}

/** Returns a transport for servers that have an instanceId. Throws RangeError for invalid timeouts. */
export function createSsmTransport(options: SsmTransportOptions): VarnishTransport {
  checkTimeouts(options);
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
export function createRoutingTransport(transports: {
  agent: VarnishTransport;
  ssm: VarnishTransport;
}): VarnishTransport {
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

/** Checks what the SDK waiter requires: 0 < min ≤ max poll delay, and min delay < timeoutSeconds. */
function checkTimeouts(options: SsmTransportOptions): void {
  const delay = options.pollDelaySeconds ?? DEFAULT_POLL_DELAY_SECONDS;
  if (!(delay.min > 0 && delay.max >= delay.min)) {
    throw new RangeError(`invalid pollDelaySeconds ${JSON.stringify(delay)}: expected 0 < min <= max`);
  }
  if (!(options.timeoutSeconds > delay.min)) {
    throw new RangeError(
      `invalid timeoutSeconds ${options.timeoutSeconds}: must exceed the minimum poll delay of ${delay.min} s`,
    );
  }
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
    throw new VarnishUnavailableError(
      `SendCommand to instance ${instanceId} failed: ${describeError(error)}`,
    );
  }
  if (!commandId) {
    throw new VarnishUnavailableError(`SendCommand to instance ${instanceId} returned no command id`);
  }

  const invocation = { CommandId: commandId, InstanceId: instanceId };
  const delay = options.pollDelaySeconds ?? DEFAULT_POLL_DELAY_SECONDS;
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

  // The waiter throws for Failed, Cancelled and TimedOut, so read the invocation for its status and output.
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

/**
 * Cancels a command that did not finish in time, so that it cannot start later. A failed cancel is
 * ignored because apply-vcl.sh --not-after also stops a late start.
 */
async function cancelQuietly(client: SSMClient, commandId: string, instanceId: string): Promise<void> {
  try {
    await client.send(new CancelCommandCommand({ CommandId: commandId, InstanceIds: [instanceId] }));
  } catch {
    // Ignored: see above.
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
