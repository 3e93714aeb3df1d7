#!/usr/bin/env node
// The installed CLI. Production: the compiled code in dist/ (`npm run build`), plain Node with no
// TypeScript runtime. Only when there is no build (a development checkout) does it fall back to the
// TypeScript sources through tsx; GANETI_TEMPORAL_FROM_SOURCE=1 asks for the sources even when
// dist/ exists (a developer whose build is older than the sources).
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/client/cli.js', import.meta.url);
if (existsSync(compiled) && process.env.GANETI_TEMPORAL_FROM_SOURCE !== '1') {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../client/cli.ts');
}
