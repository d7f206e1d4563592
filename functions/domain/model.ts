import { isIP } from 'node:net';
import { z } from 'zod';

// Every string that can reach VCL is checked here. VCL strings have no escapes, so a double quote
// or a line break in a value would end the string early and let the rest run as VCL.
// biome-ignore lint/suspicious/noControlCharactersInRegex: the pattern exists to reject control characters.
const NO_CONTROL_CHARS = /^[^\u0000-\u001f\u007f]*$/;

export const resourceName = z
  .string()
  .regex(
    /^[A-Za-z][A-Za-z0-9_-]{0,47}$/,
    'must start with a letter and contain only letters, digits, _ and -, at most 48 characters',
  );

export const ipAddress = z
  .string()
  .max(45)
  .refine((value) => isIP(value) !== 0, 'must be an IPv4 or IPv6 address');

export const tcpPort = z.number().int().min(1).max(65_535);

export const routeExpression = z
  .string()
  .min(1)
  .max(512)
  .regex(NO_CONTROL_CHARS, 'must not contain control characters')
  .regex(/^[^"]*$/, 'must not contain double quotes')
  .refine(isCompilableRegex, 'must be a valid regular expression');

export const agentUrl = z
  .string()
  .max(2048)
  .url()
  .refine((value) => /^https?:\/\//.test(value), 'must be an http or https URL');

export const serverStatus = z.enum(['active', 'maintenance', 'disabled']);
export const directorMode = z.enum(['round_robin', 'random', 'fallback', 'hash']);
export const directorRouter = z.enum(['url', 'host']);

export const clusterInput = z.strictObject({ name: resourceName });

export const ec2InstanceId = z
  .string()
  .regex(/^i-[0-9a-f]{8,17}$/, 'must be an EC2 instance id such as i-0123456789abcdef0');

// A server is reached either through the vaas agent beside varnishd or through SSM Run Command.
export const serverInput = z
  .strictObject({
    cluster: z.string().min(1).max(64),
    address: ipAddress,
    port: tcpPort,
    agentUrl: agentUrl.optional(),
    instanceId: ec2InstanceId.optional(),
    status: serverStatus.default('active'),
  })
  .superRefine((server, context) => {
    if ((server.agentUrl === undefined) === (server.instanceId === undefined)) {
      context.addIssue({
        code: 'custom',
        path: ['agentUrl'],
        message: 'give exactly one of agentUrl and instanceId',
      });
    }
  });

export const directorInput = z.strictObject({
  name: resourceName,
  clusters: z.array(z.string().min(1).max(64)).max(100).default([]),
  mode: directorMode.default('round_robin'),
  router: directorRouter.default('url'),
  routeExpression,
});

export const backendInput = z.strictObject({
  director: z.string().min(1).max(64),
  address: ipAddress,
  port: tcpPort,
  weight: z.number().int().min(0).max(100).default(1),
  enabled: z.boolean().default(true),
});

export type ServerStatus = z.infer<typeof serverStatus>;
export type DirectorMode = z.infer<typeof directorMode>;
export type DirectorRouter = z.infer<typeof directorRouter>;

export interface Cluster {
  id: string;
  name: string;
  /** Timestamp of the newest task whose change is live on the cluster. */
  reloadTimestamp?: string;
  /** Timestamp of the task whose reload failed most recently. */
  errorTimestamp?: string;
  lastError?: string;
}

/** Ordering state of a cluster, kept beside it and never shown by the API. */
export interface ClusterSequence {
  /** Bumped atomically by every change that affects the cluster, after the change is saved. */
  changeSeq: number;
  /** The changeSeq that the last successful reload read before it rendered. */
  appliedSeq: number;
  /** Seq of the task shown in reloadTimestamp; orders updates without trusting clocks. */
  reloadTaskSeq?: number;
  /** When a reload was last tried or requested; the reconciler retries after a pause. */
  lastAttemptAt?: string;
}

export type ClusterRecord = Cluster & ClusterSequence;

export interface Server {
  id: string;
  cluster: string;
  address: string;
  port: number;
  /** URL of the vaas agent beside varnishd; absent when the server is reached through SSM. */
  agentUrl?: string;
  /** EC2 instance id for SSM Run Command; absent when the server has an agent. */
  instanceId?: string;
  status: ServerStatus;
}

export interface Director {
  id: string;
  name: string;
  clusters: string[];
  mode: DirectorMode;
  router: DirectorRouter;
  routeExpression: string;
}

export interface Backend {
  id: string;
  director: string;
  address: string;
  port: number;
  weight: number;
  enabled: boolean;
}

/** Everything that the VCL of one cluster is rendered from. */
export interface ClusterConfig {
  cluster: Cluster;
  servers: Server[];
  directors: Director[];
  backends: Backend[];
}

export type TaskStatus = 'queued' | 'running' | 'succeeded' | 'failed';

export interface TaskClusterState {
  /** The cluster's changeSeq that this task's change produced. */
  seq: number;
  status: TaskStatus;
  error?: string;
  finishedAt?: string;
}

export interface Task {
  id: string;
  timestamp: string;
  clusters: Record<string, TaskClusterState>;
  /** Clusters whose part of the task has not finished yet; the sync wait polls this. */
  pendingCount: number;
  /** `change` for a write through the API; `retry` when the reconciler re-drives a cluster. */
  origin: 'change' | 'retry';
}

/**
 * Checks a regular expression with JavaScript's engine after dropping PCRE inline flags such as
 * `(?i)`, which JavaScript lacks. NOTE: varnishd compiles with PCRE2, which rejects a few
 * patterns that JavaScript accepts (a lookbehind of variable length, say); those fail at reload
 * with varnishd's message.
 */
function isCompilableRegex(value: string): boolean {
  try {
    new RegExp(value.replace(/\(\?[imsxn-]+\)/g, ''));
    return true;
  } catch {
    return false;
  }
}
