/** Where and how commands print: results on stdout (JSON with --json), the Web UI link on stderr. */
export const print = (s: string): void => void process.stdout.write(`${s}\n`);

export const printJson = (v: unknown): void => print(JSON.stringify(v, null, 2));
