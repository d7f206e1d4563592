// Command line entry point of the agent: `tsx agent/main.ts --help`.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Logger } from '@aws-lambda-powertools/logger';
import { deriveAgentToken } from '../functions/domain/agent-auth.js';
import { type AgentServer, startAgentServer } from './server.js';

const MIN_TOKEN_LENGTH = 16;

const USAGE = `Usage: tsx agent/main.ts [options]

Runs the vaas agent beside one varnishd. The agent accepts VCL changes over HTTP and applies them
through varnishd's admin port.

Options:
  --listen HOST:PORT     address of the agent's HTTP API (default 127.0.0.1:6085)
  --admin HOST:PORT      varnishd admin address, its -T option (default 127.0.0.1:6082)
  --secret-file PATH     varnishd admin secret, its -S option (default /etc/varnish/secret)
  --token-file PATH      file with the bearer token that clients must send; without it the
                         token comes from the environment variable VAAS_AGENT_TOKEN.
                         The token must be at least ${MIN_TOKEN_LENGTH} characters long.
  --help                 print this help

The token of an agent is derived from the control plane's agent key and the agent's URL, as
registered in the server's agentUrl. Print it with:

  VAAS_AGENT_KEY=<agent key> tsx agent/main.ts derive-token http://10.0.0.5:6085
`;

interface AgentConfig {
  listen: { host: string; port: number };
  admin: { host: string; port: number };
  secret: Buffer;
  token: string;
}

/** Splits `HOST:PORT` or `[IPV6]:PORT`; throws an error that names the option. */
function parseHostPort(option: string, value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  const host = match?.[1] ?? match?.[2];
  if (!host || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new Error(
      `invalid --${option} ${JSON.stringify(value)}: expected HOST:PORT with a port from 1 to 65535`,
    );
  }
  return { host, port };
}

function readConfig(argv: string[]): AgentConfig | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      listen: { type: 'string', default: '127.0.0.1:6085' },
      admin: { type: 'string', default: '127.0.0.1:6082' },
      'secret-file': { type: 'string', default: '/etc/varnish/secret' },
      'token-file': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    return undefined;
  }

  const secret = readRequiredFile('--secret-file', values['secret-file']);
  const tokenFile = values['token-file'];
  const token = (
    tokenFile ? readRequiredFile('--token-file', tokenFile).toString('utf8') : process.env.VAAS_AGENT_TOKEN
  )?.trim();
  if (!token) {
    throw new Error('missing token: pass --token-file PATH or set VAAS_AGENT_TOKEN');
  }
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
    throw new Error(
      `invalid token: it must be at least ${MIN_TOKEN_LENGTH} characters long, without whitespace`,
    );
  }

  return {
    listen: parseHostPort('listen', values.listen),
    admin: parseHostPort('admin', values.admin),
    secret,
    token,
  };
}

function readRequiredFile(option: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(`cannot read ${option} ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
}

/** Prints the token for the agent at `agentUrl`, derived from the key in VAAS_AGENT_KEY. */
function printDerivedToken(agentUrl: string | undefined): void {
  const key = process.env.VAAS_AGENT_KEY?.trim();
  if (!key || !agentUrl || !URL.canParse(agentUrl)) {
    process.stderr.write(
      'vaas-agent: usage: VAAS_AGENT_KEY=<agent key> tsx agent/main.ts derive-token URL\n',
    );
    process.exitCode = 2;
    return;
  }
  process.stdout.write(`${deriveAgentToken(key, agentUrl)}\n`);
}

async function main(): Promise<void> {
  if (process.argv[2] === 'derive-token') {
    printDerivedToken(process.argv[3]);
    return;
  }

  let config: AgentConfig | undefined;
  try {
    config = readConfig(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`vaas-agent: ${(error as Error).message}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (!config) {
    process.stdout.write(USAGE);
    return;
  }

  const logger = new Logger({ serviceName: 'vaas-agent' });
  let server: AgentServer;
  try {
    server = await startAgentServer({
      token: config.token,
      admin: { ...config.admin, secret: config.secret },
      host: config.listen.host,
      port: config.listen.port,
      logger,
    });
  } catch (error) {
    process.stderr.write(
      `vaas-agent: cannot listen on ${config.listen.host}:${config.listen.port}: ${(error as Error).message}\n`,
    );
    process.exitCode = 1;
    return;
  }

  const stop = (signal: string) => {
    logger.info('stopping', { signal });
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error('stop failed', { error: String(error) });
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

await main();
