/**
 * `.dockerignore`, read as Docker reads it, so files it excludes are not even
 * packed into the build context: one pattern per line, `#` comments, `!` for
 * exceptions, `*` and `?` within a path part, `**` across parts; the last
 * matching line decides, and a path is excluded when it or a folder above it is.
 */

/** One line of the file: its pattern as a RegExp, and whether it is an exception. */
interface Rule {
  pattern: RegExp;
  exception: boolean;
}

/** A pattern in Docker's syntax as a RegExp over a relative path with `/`. */
function toRegExp(pattern: string): RegExp {
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i]!;
    if (char === "*" && pattern[i + 1] === "*") {
      // `**/` matches any number of folders (none included); a trailing `**` anything.
      source += pattern[i + 2] === "/" ? "(?:.*/)?" : ".*";
      i += pattern[i + 2] === "/" ? 2 : 1;
    } else if (char === "*") source += "[^/]*";
    else if (char === "?") source += "[^/]";
    else if (char === "[") {
      const close = pattern.indexOf("]", i + 1);
      if (close < 0) source += "\\[";
      else {
        source += `[${pattern
          .slice(i + 1, close)
          .replace(/^!/, "^")
          .replace(/\\/g, "\\\\")}]`;
        i = close;
      }
    } else if (char === "\\" && i + 1 < pattern.length) source += `\\${pattern[++i]}`;
    else source += char.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${source}$`);
}

/** Clean a pattern as Docker does: trimmed, no leading `/` or `./`, no trailing `/`. */
function clean(pattern: string): string {
  return pattern
    .trim()
    .replace(/^(\.?\/)+/, "")
    .replace(/\/+$/, "");
}

/** The rules of a .dockerignore file's text. */
export function parseDockerignore(text: string): Rule[] {
  const rules: Rule[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const exception = line.startsWith("!");
    const pattern = clean(exception ? line.slice(1) : line);
    if (pattern) rules.push({ pattern: toRegExp(pattern), exception });
  }
  return rules;
}

/** True when `relative` (with `/`) is excluded by `rules`. */
export function isIgnored(rules: readonly Rule[], relative: string): boolean {
  const parts = relative.split("/");
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join("/")); // the path and the folders above it
  let ignored = false;
  for (const rule of rules) {
    if (candidates.some((candidate) => rule.pattern.test(candidate))) ignored = !rule.exception;
  }
  return ignored;
}
