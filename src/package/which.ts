/** Finding programs on a PATH that the caller passes in (the library never reads the process environment). */
import fs from "node:fs";
import path from "node:path";

/** The absolute path of `program` on `pathVar` (a PATH value), or undefined. A name with a slash is checked as given. */
export function which(program: string, pathVar: string | undefined): string | undefined {
  const candidates = program.includes("/")
    ? [program]
    : (pathVar ?? "")
        .split(path.delimiter)
        .filter(Boolean)
        .map((dir) => path.join(dir, program));
  for (const candidate of candidates) {
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return path.resolve(candidate);
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}
