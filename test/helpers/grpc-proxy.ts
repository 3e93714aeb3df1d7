/**
 * A TLS-terminating gRPC proxy in front of a dev server, as a production Temporal endpoint looks to
 * its clients: nginx (Debian's package) on loopback with a certificate of a throw-away CA made by
 * openssl, HTTP/2 `grpc_pass` to the dev server, client certificates required (mTLS) and an
 * `authorization: Bearer <API key>` header checked (HTTP 401 otherwise, which gRPC clients read as
 * UNAUTHENTICATED). Everything lives in one temporary directory; `stop` ends nginx and removes it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../adapters/common/net.js';
import { ensureCommand } from './system-packages.js';

export interface GrpcProxy {
  /** host:port of the proxy (TLS). */
  address: string;
  apiKey: string;
  /** PEM files: the CA that signed the server and client certificates, the client pair, and an unrelated CA. */
  files: { ca: string; clientCert: string; clientKey: string; otherCa: string };
  dir: string;
  /** The proxy's access log (one line per request: status and path). */
  accessLog(): string;
  stop(): Promise<void>;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A CA, and a certificate it signs with the given extensions. */
function makeCerts(dir: string): GrpcProxy['files'] {
  openssl(dir, ['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=ganeti-temporal test CA']);
  openssl(dir, ['req', '-x509', ...EC, '-keyout', 'other-ca.key', '-out', 'other-ca.crt', '-days', '1', '-subj', '/CN=unrelated CA']);
  const sign = (name: string, subject: string, ext: string) => {
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(dir, ['req', '-new', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
    openssl(dir, [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '1',
      '-extfile',
      `${name}.ext`,
    ]);
  };
  sign('server', '/CN=localhost', 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  sign('client', '/CN=ganeti-temporal worker', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
  return {
    ca: join(dir, 'ca.crt'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
    otherCa: join(dir, 'other-ca.crt'),
  };
}

function config(dir: string, port: number, upstream: string, apiKey: string): string {
  const tmp = (n: string) => join(dir, 'tmp', n);
  return `daemon off;
master_process off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 256; }
http {
  log_format grpc '$status $request_uri';
  access_log ${join(dir, 'access.log')} grpc;
  client_body_temp_path ${tmp('body')};
  proxy_temp_path ${tmp('proxy')};
  fastcgi_temp_path ${tmp('fastcgi')};
  uwsgi_temp_path ${tmp('uwsgi')};
  scgi_temp_path ${tmp('scgi')};
  server {
    listen 127.0.0.1:${port} ssl http2;
    ssl_certificate ${join(dir, 'server.crt')};
    ssl_certificate_key ${join(dir, 'server.key')};
    ssl_client_certificate ${join(dir, 'ca.crt')};
    ssl_verify_client on;
    client_max_body_size 0;
    # Workers' long polls last up to 70 s.
    grpc_read_timeout 120s;
    grpc_send_timeout 120s;
    location / {
      if ($http_authorization != "Bearer ${apiKey}") { return 401; }
      grpc_pass grpc://${upstream};
    }
  }
}
`;
}

async function waitForPort(port: number, child: ChildProcess, log: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}): ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nginx does not listen on ${port}: ${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts the proxy on a free loopback port in front of `upstream` (host:port, plain gRPC). */
export async function startGrpcProxy(upstream: string, apiKey: string): Promise<GrpcProxy> {
  // (Debian puts nginx in /usr/sbin, which a non-login PATH may lack.)
  const nginx = existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : ensureCommand('nginx', 'nginx');
  ensureCommand('openssl', 'openssl');
  const dir = mkdtempSync(join(tmpdir(), 'ganeti-temporal-proxy-'));
  let child: ChildProcess | undefined;
  try {
    mkdirSync(join(dir, 'tmp'));
    const files = makeCerts(dir);
    const port = await freePort();
    writeFileSync(join(dir, 'nginx.conf'), config(dir, port, upstream, apiKey));
    child = spawn(nginx, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const errorLog = () => {
      try {
        return out + readFileSync(join(dir, 'error.log'), 'utf8');
      } catch {
        return out;
      }
    };
    await waitForPort(port, child, errorLog);
    const proc = child;
    return {
      address: `127.0.0.1:${port}`,
      apiKey,
      files,
      dir,
      accessLog: () => readFileSync(join(dir, 'access.log'), 'utf8'),
      stop: async () => {
        if (proc.exitCode === null) {
          const exited = new Promise((r) => proc.once('exit', r));
          proc.kill('SIGTERM');
          await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
          if (proc.exitCode === null) proc.kill('SIGKILL');
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
