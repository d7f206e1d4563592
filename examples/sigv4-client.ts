// Calls the vaas REST API with an AWS SigV4 signature, the way any AWS SDK script or role can.
//
//   npx tsx examples/sigv4-client.ts GET  https://abc123.execute-api.eu-west-1.amazonaws.com/prod/v1/clusters
//   npx tsx examples/sigv4-client.ts POST https://abc123.execute-api.eu-west-1.amazonaws.com/prod/v1/clusters \
//     '{"name":"edge"}'
//
// Credentials come from the default AWS chain (environment, profile, SSO, instance or task role).
// The caller needs `execute-api:Invoke` on the API, for example on
// arn:aws:execute-api:REGION:ACCOUNT:API_ID/prod/*.
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Checksum, SourceData } from '@smithy/types';

const USAGE = `Usage: npx tsx examples/sigv4-client.ts METHOD URL [JSON_BODY] [options]

Sends one SigV4-signed request to the vaas API and prints the status and the body.

Options:
  --region REGION   signing region (default: taken from the execute-api host name, else AWS_REGION)
  --async           send "Prefer: respond-async", so a change returns 202 at once instead of
                    waiting for the reload
  --help            print this help
`;

/** SHA-256 and HMAC-SHA-256 on node:crypto, in the shape that SignatureV4 expects. */
class Sha256 implements Checksum {
  private hash: Hash | Hmac;

  constructor(private readonly secret?: SourceData) {
    this.hash = this.create();
  }

  update(data: Uint8Array): void {
    this.hash.update(data);
  }

  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }

  reset(): void {
    this.hash = this.create();
  }

  private create(): Hash | Hmac {
    if (this.secret === undefined) return createHash('sha256');
    return createHmac('sha256', toBuffer(this.secret));
  }
}

function toBuffer(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/** Returns the region from a host such as `abc123.execute-api.eu-west-1.amazonaws.com`. */
function regionFromHost(hostname: string): string | undefined {
  return /^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(hostname)?.[1];
}

export interface SignedRequest {
  method: string;
  url: URL;
  body?: string;
  region: string;
  preferAsync?: boolean;
}

/** Signs a request for the `execute-api` service and sends it with fetch. */
export async function sendSigned(request: SignedRequest): Promise<Response> {
  const signer = new SignatureV4({
    service: 'execute-api',
    region: request.region,
    credentials: defaultProvider(),
    sha256: Sha256,
  });

  const headers: Record<string, string> = { host: request.url.host };
  if (request.body !== undefined) headers['content-type'] = 'application/json';
  if (request.preferAsync) headers.prefer = 'respond-async';

  const signed = await signer.sign({
    method: request.method,
    protocol: request.url.protocol,
    hostname: request.url.hostname,
    path: request.url.pathname,
    query: Object.fromEntries(request.url.searchParams),
    headers,
    body: request.body,
  });

  // fetch sets Host itself and rejects it as a request header.
  const { host: _host, ...sendHeaders } = signed.headers;
  return fetch(request.url, { method: request.method, headers: sendHeaders, body: request.body });
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: {
      region: { type: 'string' },
      async: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    allowPositionals: true,
  });
  const [method, target, body] = positionals;
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (method === undefined || target === undefined) {
    process.stderr.write(`sigv4-client: missing METHOD or URL\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }

  const url = new URL(target);
  const region = values.region ?? regionFromHost(url.hostname) ?? process.env.AWS_REGION;
  if (!region) {
    throw new Error(`cannot determine the region of ${url.hostname}; pass --region or set AWS_REGION`);
  }

  const response = await sendSigned({
    method: method.toUpperCase(),
    url,
    body,
    region,
    preferAsync: values.async,
  });
  process.stdout.write(`${response.status} ${response.statusText}\n`);
  const location = response.headers.get('location');
  if (location) process.stdout.write(`Location: ${location}\n`);
  process.stdout.write(`${await response.text()}\n`);
  if (!response.ok) process.exitCode = 1;
}

// Runs only when executed directly, never when imported.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`sigv4-client: ${(error as Error).message}\n`);
    process.exitCode = 1;
  });
}
