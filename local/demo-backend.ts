// Minimal HTTP origin for demos and tests: shows which backend served a request.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DemoBackendOptions {
  /** Name returned in the body and in the X-Backend header. */
  name: string;
  /** Port on 127.0.0.1; 0 or undefined picks a free port. */
  port?: number;
}

export interface DemoBackend {
  port: number;
  close(): Promise<void>;
}

/** Starts a server that responds to every request with 200 and the body `<name> <method> <url>\n`. */
export async function startDemoBackend(options: DemoBackendOptions): Promise<DemoBackend> {
  const server = createServer((request, response) => {
    const body = `${options.name} ${request.method} ${request.url}\n`;
    response.writeHead(200, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      'X-Backend': options.name,
    });
    response.end(body);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });

  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
