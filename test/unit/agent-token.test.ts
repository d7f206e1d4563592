// Secrets Manager is mocked with aws-sdk-client-mock: no Secrets Manager emulator runs here.
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { createAgentTokenLoader } from '../../functions/shared/agent-token.js';

const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:AgentToken-AbCdEf';
const secrets = mockClient(SecretsManagerClient);
const createClient = () => new SecretsManagerClient({ region: 'eu-west-1' });

afterEach(() => {
  secrets.reset();
});

describe('loadAgentToken', () => {
  it('reads the secret once per loader', async () => {
    secrets
      .on(GetSecretValueCommand, { SecretId: SECRET_ARN })
      .resolves({ SecretString: 'token-from-secrets-manager\n' });
    const load = createAgentTokenLoader({ VAAS_AGENT_TOKEN_SECRET_ARN: SECRET_ARN }, createClient);

    expect(await load()).toBe('token-from-secrets-manager');
    expect(await load()).toBe('token-from-secrets-manager');
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1);
  });

  it('retries after a failed read', async () => {
    secrets
      .on(GetSecretValueCommand)
      .rejectsOnce(new Error('AccessDeniedException: not authorized'))
      .resolves({ SecretString: 'second-attempt-token' });
    const load = createAgentTokenLoader({ VAAS_AGENT_TOKEN_SECRET_ARN: SECRET_ARN }, createClient);

    await expect(load()).rejects.toThrow(/not authorized/);
    expect(await load()).toBe('second-attempt-token');
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('rejects a secret without a string value', async () => {
    secrets.on(GetSecretValueCommand).resolves({ SecretBinary: new Uint8Array([1, 2, 3]) });
    const load = createAgentTokenLoader({ VAAS_AGENT_TOKEN_SECRET_ARN: SECRET_ARN }, createClient);

    await expect(load()).rejects.toThrow(`secret ${SECRET_ARN} has no string value`);
  });

  it('falls back to VAAS_AGENT_KEY without a secret ARN', async () => {
    const load = createAgentTokenLoader({ VAAS_AGENT_KEY: 'local-token-0123456789' }, createClient);

    expect(await load()).toBe('local-token-0123456789');
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(0);
  });

  it('returns empty without any token setting', async () => {
    const load = createAgentTokenLoader({}, createClient);

    expect(await load()).toBe('');
  });
});
