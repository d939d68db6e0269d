/**
 * Text for people: names made safe to print, and sizes as people read and type them. Kept apart from the archive code
 * that uses them too, so a command that only prints (every local `fit`) does not load zlib and node-tar's helpers.
 */

/** Characters that a terminal acts on instead of showing (C0 and C1 controls, DEL) or that reorder or break lines (bidirectional overrides, line separators). */
// eslint-disable-next-line no-control-regex -- control characters are what this looks for
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** `name` fit to print on a terminal: each control character escaped (`\x1b`, `\u202e`), so an archive cannot recolour, retitle or rewrite the screen. */
export function printable(name: string): string {
  return name.replace(UNPRINTABLE, (char) => {
    const code = char.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/** A size in bytes as people read it (`3.0 GiB`). */
export function formatBytes(bytes: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A size as typed for --max-size (`500M`, `20G`, `20GiB`, `1.5T`, `1048576`): bytes, in powers of 1024; undefined when it is not one. */
export function parseSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text);
  if (!match) return undefined;
  const power = " kmgt".indexOf(match[2]!.toLowerCase() || " ");
  return Math.floor(Number(match[1]) * 1024 ** power);
}
