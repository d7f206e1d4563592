import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

// The bearer token that the reload function sends to the agents. On AWS it lives in Secrets
// Manager (VAAS_AGENT_TOKEN_SECRET_ARN) and is read once per execution environment, so a rotated
// token reaches the function with its next cold start. The local runtime passes it in
// VAAS_AGENT_KEY instead.

export type AgentTokenLoader = () => Promise<string>;

/**
 * Creates a loader that reads the token once and caches it. A failed read is not cached, so the
 * next call tries again. Without a secret ARN the loader returns VAAS_AGENT_KEY, or an empty
 * string when the agents are reached another way (SSM).
 */
export function createAgentTokenLoader(
  env: NodeJS.ProcessEnv = process.env,
  createClient: () => SecretsManagerClient = () => new SecretsManagerClient({}),
): AgentTokenLoader {
  let cached: Promise<string> | undefined;

  return () => {
    cached ??= readToken(env, createClient).catch((error: unknown) => {
      cached = undefined;
      throw error;
    });
    return cached;
  };
}

async function readToken(env: NodeJS.ProcessEnv, createClient: () => SecretsManagerClient): Promise<string> {
  const secretArn = env.VAAS_AGENT_TOKEN_SECRET_ARN;
  if (!secretArn) return env.VAAS_AGENT_KEY?.trim() ?? '';

  const result = await createClient().send(new GetSecretValueCommand({ SecretId: secretArn }));
  const token = result.SecretString?.trim();
  if (!token) {
    throw new Error(`secret ${secretArn} has no string value; store the agent token as SecretString`);
  }
  return token;
}

/** Loads the agent token from this process's environment, once per execution environment. */
export const loadAgentToken: AgentTokenLoader = createAgentTokenLoader();
