import { describe, expect, it } from 'vitest';
import { deriveAgentToken } from '../../functions/domain/agent-auth.js';

describe('deriveAgentToken', () => {
  it('differs per agent origin', () => {
    const first = deriveAgentToken('key-0123456789', 'http://10.0.0.5:6085');
    expect(deriveAgentToken('key-0123456789', 'http://10.0.0.6:6085')).not.toBe(first);
    expect(deriveAgentToken('key-0123456789', 'https://10.0.0.5:6085')).not.toBe(first);
    expect(deriveAgentToken('key-0123456789', 'http://10.0.0.5:6086')).not.toBe(first);
  });

  it('differs per key', () => {
    expect(deriveAgentToken('key-a-0123456789', 'http://10.0.0.5:6085')).not.toBe(
      deriveAgentToken('key-b-0123456789', 'http://10.0.0.5:6085'),
    );
  });

  it('ignores a trailing slash and the case of the host', () => {
    const token = deriveAgentToken('key-0123456789', 'http://agent.example:6085');
    expect(deriveAgentToken('key-0123456789', 'http://AGENT.example:6085/')).toBe(token);
  });
});
