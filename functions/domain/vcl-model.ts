// Schemas and types of the resources that only shape VCL: datacenters, probes, time profiles,
// routes and VCL templates. model.ts exports them with the other resources.
import { z } from 'zod';
import { type RouteCondition, routeCondition } from './vcl-condition.js';
import { type VclBlockName, vclTemplateBlocks } from './vcl-template.js';
import { resourceName } from './vcl-values.js';

/** A reference to another resource by its id. */
export const entityId = z.string().min(1).max(64);

/** A datacenter's name is part of VCL identifiers, so it is short and has no separators. */
export const datacenterName = z
  .string()
  .regex(
    /^[a-z][a-z0-9]{0,7}$/,
    'must start with a lowercase letter and contain only a-z and 0-9, at most 8 characters',
  );

export const datacenterInput = z.strictObject({ name: datacenterName });

export const probeInput = z
  .strictObject({
    name: resourceName,
    url: z
      .string()
      .regex(
        /^\/[!#-~]{0,255}$/,
        'must be a path that starts with / and contains only visible ASCII other than ", at most 256 characters',
      )
      .default('/'),
    expectedStatus: z.number().int().min(100).max(599).default(200),
    intervalSeconds: z.number().min(0.1).max(3600).default(5),
    timeoutSeconds: z.number().min(0.1).max(600).default(2),
    window: z.number().int().min(1).max(64).default(8),
    threshold: z.number().int().min(1).max(64).default(3),
    startHealthy: z.boolean().default(false),
  })
  .superRefine((probe, context) => {
    if (probe.threshold > probe.window) {
      context.addIssue({ code: 'custom', path: ['threshold'], message: 'must not exceed window' });
    }
    if (probe.timeoutSeconds > probe.intervalSeconds) {
      context.addIssue({
        code: 'custom',
        path: ['timeoutSeconds'],
        message: 'must not exceed intervalSeconds',
      });
    }
  });

export const timeProfileInput = z.strictObject({
  name: resourceName,
  connectTimeoutSeconds: z.number().min(0.01).max(300).default(3.5),
  firstByteTimeoutSeconds: z.number().min(0.01).max(3600).default(60),
  betweenBytesTimeoutSeconds: z.number().min(0.01).max(3600).default(60),
  maxConnections: z.number().int().min(1).max(100_000).optional(),
});

export const routeInput = z.strictObject({
  name: resourceName,
  /** Routes are tried from the lowest priority number up; ties go by name, then id. */
  priority: z.number().int().min(0).max(1_000_000),
  director: entityId,
  clusters: z.array(entityId).max(100).default([]),
  condition: routeCondition,
});

export const vclTemplateInput = z.strictObject({
  name: resourceName,
  blocks: vclTemplateBlocks.default({}),
});

export interface Datacenter {
  id: string;
  name: string;
}

export interface Probe {
  id: string;
  name: string;
  url: string;
  expectedStatus: number;
  intervalSeconds: number;
  timeoutSeconds: number;
  /** How many of the latest probes count. */
  window: number;
  /** How many of the latest `window` probes must succeed for the backend to be healthy. */
  threshold: number;
  /** Start healthy, as if `threshold` probes had succeeded; otherwise one good probe is needed first. */
  startHealthy: boolean;
}

export interface TimeProfile {
  id: string;
  name: string;
  connectTimeoutSeconds: number;
  firstByteTimeoutSeconds: number;
  betweenBytesTimeoutSeconds: number;
  maxConnections?: number;
}

export interface Route {
  id: string;
  name: string;
  priority: number;
  director: string;
  clusters: string[];
  condition: RouteCondition;
}

export interface VclTemplate {
  id: string;
  name: string;
  blocks: Partial<Record<VclBlockName, string>>;
}
