// Settings that every handler reads from its environment. Endpoints follow the AWS SDK's own
// variables (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL_SSM), so the same
// code talks to AWS, to LocalStack or to the local emulators.

export interface VaasConfig {
  tableName: string;
  queueUrl: string;
  agentTimeoutMs: number;
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): VaasConfig {
  return {
    tableName: required(env, 'VAAS_TABLE_NAME'),
    queueUrl: required(env, 'VAAS_QUEUE_URL'),
    agentTimeoutMs: Number(env.VAAS_AGENT_TIMEOUT_MS ?? 60_000),
  };
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new Error(`missing environment variable ${name}`);
  return value;
}
