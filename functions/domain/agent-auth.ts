import { createHmac } from 'node:crypto';

// Each agent accepts its own token, derived from the control plane's key and the agent's origin.
// A server registered with an agentUrl that points elsewhere therefore receives a token that is
// valid only at that address, never one that opens the other agents of the fleet.

const DERIVATION_LABEL = 'vaas-agent-token/v1';

/** Returns the origin (scheme, host and port) that identifies an agent, for example `http://10.0.0.5:6085`. */
export function agentOrigin(agentUrl: string): string {
  return new URL(agentUrl).origin;
}

/** Derives the bearer token of the agent at `agentUrl` from the control plane's key. */
export function deriveAgentToken(key: string, agentUrl: string): string {
  return createHmac('sha256', key)
    .update(`${DERIVATION_LABEL} ${agentOrigin(agentUrl)}`)
    .digest('base64url');
}
