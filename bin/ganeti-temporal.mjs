#!/usr/bin/env node
// The installed CLI: runs the TypeScript sources through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../client/cli.ts');
