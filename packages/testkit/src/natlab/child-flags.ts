/** Argument parsing for the lab's child scripts: `--name value` pairs only, anything else throws. */
export function childFlags(argv: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i] ?? '';
    if (!k.startsWith('--')) throw new Error(`unexpected argument ${k}`);
    out[k.slice(2)] = argv[i + 1] ?? '';
  }
  return out;
}
