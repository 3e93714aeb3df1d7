/** Local TCP ports: whether one is free, and finding a free one. */
import { createServer } from 'node:net';

/** Whether something could bind `ip:port` right now (a probe; the real user binds it moments later). */
export function portFree(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: ip, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/**
 * A port free on `ip` right now (a probe, as `portFree`): the first one from `from` on, or without
 * `from` one the system picks.
 */
export async function freePort(ip = '127.0.0.1', from?: number): Promise<number> {
  if (from !== undefined) {
    for (let p = from; ; p++) if (await portFree(ip, p)) return p;
  }
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, ip, () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
