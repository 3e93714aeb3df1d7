/**
 * The codec endpoint: Temporal's remote codec protocol over HTTP, so that the Web UI (and `temporal
 * --codec-endpoint`) show decoded payloads. `POST …/encode` and `POST …/decode` take and return
 * `{"payloads": [{"metadata": {"<key>": "<base64>"}, "data": "<base64>"}]}` (Payloads in proto3 JSON);
 * only the last path segment counts. Browsers may call it from the allowed origins only (CORS,
 * preflight included); requests without an Origin header (command-line tools) are served. It listens
 * on loopback by default: anyone who can reach it can decrypt payloads.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 = a free port. */
  port: number;
  /** Origins (scheme://host:port) whose pages may call the endpoint, e.g. the Web UI's. */
  allowedOrigins: string[];
}

export interface CodecServer {
  /** The base URL to give the Web UI (`--ui-codec-endpoint`) or the temporal CLI (`--codec-endpoint`). */
  url: string;
  close(): Promise<void>;
}

interface JsonPayload {
  metadata?: Record<string, string> | null;
  data?: string | null;
}

const MAX_BODY = 32 * 1024 * 1024;

class BadRequest extends Error {}

function fromJson(p: JsonPayload): Payload {
  if (!p || typeof p !== 'object') throw new BadRequest('a payload must be an object');
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) {
    if (typeof v !== 'string') throw new BadRequest(`metadata ${k} must be a base64 string`);
    metadata[k] = Buffer.from(v, 'base64');
  }
  if (p.data != null && typeof p.data !== 'string') throw new BadRequest('data must be a base64 string');
  return { metadata, data: Buffer.from(p.data ?? '', 'base64') };
}

function toJson(p: Payload): JsonPayload {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
  };
}

async function body(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new BadRequest('request body too large');
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new BadRequest('the body is not JSON');
  }
}

export async function startCodecServer(o: CodecServerOptions): Promise<CodecServer> {
  const allowed = new Set(o.allowedOrigins.map((u) => new URL(u).origin));

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const origin = req.headers.origin;
    if (origin !== undefined) {
      if (!allowed.has(origin)) {
        res.writeHead(403, { 'content-type': 'text/plain' }).end('origin not allowed\n');
        return;
      }
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('vary', 'Origin');
      res.setHeader('access-control-allow-credentials', 'true');
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        'access-control-allow-methods': 'POST, OPTIONS',
        'access-control-allow-headers': req.headers['access-control-request-headers'] ?? 'content-type, x-namespace, authorization',
        'access-control-max-age': '600',
      });
      res.end();
      return;
    }
    const op = new URL(req.url ?? '/', 'http://codec').pathname.split('/').filter(Boolean).at(-1);
    if (req.method !== 'POST' || (op !== 'encode' && op !== 'decode')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('POST /encode or /decode\n');
      return;
    }
    try {
      const b = (await body(req)) as { payloads?: unknown };
      if (!b || !Array.isArray(b.payloads)) throw new BadRequest('the body must be {"payloads": [...]}');
      const input = (b.payloads as JsonPayload[]).map(fromJson);
      const out = op === 'encode' ? await o.codec.encode(input) : await o.codec.decode(input);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ payloads: out.map(toJson) }));
    } catch (e) {
      const status = e instanceof BadRequest ? 400 : 422;
      res.writeHead(status, { 'content-type': 'text/plain' }).end(`${(e as Error).message}\n`);
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`${(e as Error).message}\n`);
    });
  });
  const host = o.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
