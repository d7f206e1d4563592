import { isIP } from 'node:net';
import { z } from 'zod';
import type { Datacenter, Probe, Route, TimeProfile, VclTemplate } from './vcl-model.js';
import { entityId } from './vcl-model.js';
import { clusterVariables } from './vcl-template.js';
import { cookieName, resourceName, vclRegex } from './vcl-values.js';

export {
  type Datacenter,
  datacenterInput,
  datacenterName,
  type Probe,
  probeInput,
  type Route,
  routeInput,
  type TimeProfile,
  timeProfileInput,
  type VclTemplate,
  vclTemplateInput,
} from './vcl-model.js';
export { resourceName } from './vcl-values.js';

// Every string that can reach VCL is checked here or in the vcl-*.ts schemas that this file uses.
// VCL strings have no escapes, so a double quote or a line break in a value would end the string
// early and let the rest run as VCL.

export const ipAddress = z
  .string()
  .max(45)
  .refine((value) => isIP(value) !== 0, 'must be an IPv4 or IPv6 address')
  // A zone id (fe80::1%eth0) names an interface of one host, which means nothing in a fleet's VCL.
  .refine((value) => !value.includes('%'), 'must not contain an IPv6 zone id');

export const tcpPort = z.number().int().min(1).max(65_535);

export const routeExpression = vclRegex;

const backendTag = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/,
    'must contain only letters, digits, _, . and -, at most 32 characters',
  );

/** The tag that puts a backend behind canary servers. */
export const CANARY_TAG = 'canary';

export const agentUrl = z
  .string()
  .max(2048)
  .url()
  .refine((value) => /^https?:\/\//.test(value), 'must be an http or https URL')
  .refine(
    isPlainOrigin,
    'must be an origin such as http://10.0.0.5:6085, without credentials, query or fragment',
  );

export const serverStatus = z.enum(['active', 'maintenance', 'disabled']);
export const directorMode = z.enum(['round_robin', 'random', 'fallback', 'hash']);
export const directorRouter = z.enum(['url', 'host']);

export const hashBy = z.enum(['url', 'cookie']);

export const clusterInput = z.strictObject({
  name: resourceName,
  template: entityId.optional(),
  variables: clusterVariables.default({}),
});

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
    datacenter: entityId.optional(),
    canary: z.boolean().default(false),
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

export const directorInput = z
  .strictObject({
    name: resourceName,
    clusters: z.array(entityId).max(100).default([]),
    mode: directorMode.default('round_robin'),
    router: directorRouter.default('url'),
    routeExpression,
    probe: entityId.optional(),
    timeProfile: entityId.optional(),
    preferLocalDatacenter: z.boolean().default(false),
    hashBy: hashBy.optional(),
    hashCookie: cookieName.optional(),
  })
  .superRefine((director, context) => {
    if (director.hashBy !== undefined && director.mode !== 'hash') {
      context.addIssue({ code: 'custom', path: ['hashBy'], message: 'applies only to mode hash' });
    }
    if ((director.hashBy === 'cookie') !== (director.hashCookie !== undefined)) {
      context.addIssue({
        code: 'custom',
        path: ['hashCookie'],
        message: 'is required with hashBy cookie, and only then',
      });
    }
  });

export const backendInput = z.strictObject({
  director: entityId,
  address: ipAddress,
  port: tcpPort,
  weight: z.number().int().min(0).max(100).default(1),
  enabled: z.boolean().default(true),
  datacenter: entityId.optional(),
  tags: z
    .array(backendTag)
    .max(16)
    .refine((tags) => new Set(tags).size === tags.length, 'must not repeat a tag')
    .default([]),
  probe: entityId.optional(),
  timeProfile: entityId.optional(),
});

export type ServerStatus = z.infer<typeof serverStatus>;
export type DirectorMode = z.infer<typeof directorMode>;
export type DirectorRouter = z.infer<typeof directorRouter>;
export type HashBy = z.infer<typeof hashBy>;

export interface Cluster {
  id: string;
  name: string;
  /** Id of the VCL template whose blocks the cluster's VCL includes. */
  template?: string;
  /** Values for the template's placeholders. */
  variables?: Record<string, string>;
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
  datacenter?: string;
  /** A canary server gets only the backends tagged `canary` of each director. */
  canary?: boolean;
}

export interface Director {
  id: string;
  name: string;
  clusters: string[];
  mode: DirectorMode;
  router: DirectorRouter;
  /** Tried after every route, in director name order. */
  routeExpression: string;
  probe?: string;
  timeProfile?: string;
  /** Prefer backends in the server's datacenter; use the others only while all local ones are sick. */
  preferLocalDatacenter?: boolean;
  /** The key of mode `hash`: the URL (the default) or a cookie's value. */
  hashBy?: HashBy;
  hashCookie?: string;
}

export interface Backend {
  id: string;
  director: string;
  address: string;
  port: number;
  weight: number;
  enabled: boolean;
  datacenter?: string;
  tags?: string[];
  /** Overrides the director's probe for this backend. */
  probe?: string;
  /** Overrides the director's time profile for this backend. */
  timeProfile?: string;
}

/**
 * Everything that the VCL of one cluster is rendered from. The lists after `backends` are optional
 * so that a configuration without them renders as before.
 */
export interface ClusterConfig {
  cluster: Cluster;
  servers: Server[];
  directors: Director[];
  backends: Backend[];
  datacenters?: Datacenter[];
  probes?: Probe[];
  timeProfiles?: TimeProfile[];
  routes?: Route[];
  template?: VclTemplate;
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

/** True when the URL has no user, password, query or fragment, and no path beyond `/`. */
function isPlainOrigin(value: string): boolean {
  if (!URL.canParse(value)) return false;
  const url = new URL(value);
  return (
    url.username === '' && url.password === '' && url.search === '' && url.hash === '' && url.pathname === '/'
  );
}
