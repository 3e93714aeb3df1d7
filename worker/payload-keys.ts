/**
 * `payload-key` (npm run --silent payload-key -- <command>): the payload encryption keys of the
 * cluster in `$GANETI_TEMPORAL_HOME/payload-keys.json` (connection/codec.ts).
 *
 * Rotation without a stop: `add` a key on the master, copy the file to every node (each process
 * re-reads it when it changes, so all can decrypt with the new key), then `use <id>` and copy it
 * again (new payloads are encrypted with it). Keep the old key as long as histories encrypted with
 * it are to be read; `remove <id>` drops it.
 */
import type { Command } from 'commander';
import { addKey, ensureKeyFile, readKeyFile, removeKey, useKey } from '../connection/codec.js';

export function addPayloadKeyCommands(program: Command, path: () => string, say: (msg: string) => void): void {
  const keys = program.command('payload-key').description('the payload encryption keys under GANETI_TEMPORAL_HOME');
  keys
    .command('list')
    .description('the key ids, the current one marked with *')
    .action(() => {
      const k = readKeyFile(path());
      for (const id of k.keys.keys()) console.log(`${id === k.current ? '*' : ' '} ${id}`);
    });
  keys
    .command('init')
    .description('create the key file (mode 0600) if there is none')
    .action(() => {
      const r = ensureKeyFile(path());
      say(r.created ? `created ${path()} with key ${r.keys.current}` : `${path()} exists (current key ${r.keys.current})`);
    });
  keys
    .command('add')
    .description('add a fresh key; copy the file to every node before making it current')
    .option('--current', 'make it the current key at once')
    .action((o: { current?: boolean }) => {
      const id = addKey(path(), !!o.current);
      say(`added key ${id}${o.current ? ' (current)' : ''} to ${path()}`);
    });
  keys
    .command('use <id>')
    .description('make a key the current one (new payloads are encrypted with it)')
    .action((id: string) => {
      useKey(path(), id);
      say(`key ${id} is now the current key in ${path()}`);
    });
  keys
    .command('remove <id>')
    .description('remove a key that is not current (payloads encrypted with it become unreadable)')
    .action((id: string) => {
      removeKey(path(), id);
      say(`removed key ${id} from ${path()}`);
    });
}
