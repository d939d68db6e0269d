/**
 * Reading pip's output while it runs, so a long install says what it is doing
 * (the package being collected, downloaded with its size, or built) and an
 * index it cannot reach is named at pip's first retry instead of only in its
 * log. Pure: one line in, what to show out.
 */

/** What one line of pip's output means for the person waiting. */
export interface PipLine {
  /** What pip is doing now, for the progress line. */
  detail?: string;
  /** The indexes pip says it looks in (from `Looking in indexes:`). */
  indexes?: string[];
  /** Pip is retrying a request it could not make: the reason it gives, short. */
  retrying?: string;
}

const MAX_DETAIL = 100;

function short(text: string): string {
  return text.length > MAX_DETAIL ? `${text.slice(0, MAX_DETAIL - 1)}…` : text;
}

/** The meaning of one line pip printed; empty when it is not news. */
export function readPipLine(raw: string): PipLine {
  const line = raw.trim();
  let match: RegExpMatchArray | null;
  if ((match = line.match(/^Looking in indexes: (.+)$/))) return { indexes: match[1]!.split(/,\s*/) };
  if ((match = line.match(/^WARNING: Retrying \(Retry\(.*?\)\) after connection broken by '(.*)': (\S+)$/))) {
    // urllib3 names the error as a repr; its message after the last colon is what a person reads ("Connection refused").
    const reason =
      match[1]!.match(/(\[Errno -?\d+\][^'"]*|timed out|Name or service not known|Temporary failure in name resolution)/)?.[1] ?? "connection failed";
    return { retrying: `${reason.trim()}, asking for ${match[2]}` };
  }
  if ((match = line.match(/^Collecting (\S+)/))) return { detail: short(`collecting ${match[1]}`) };
  if ((match = line.match(/^Downloading (\S+)(?: \(([^)]+)\))?/))) {
    const file = match[1]!.split("/").pop()!;
    return { detail: short(`downloading ${file}${match[2] ? ` (${match[2]})` : ""}`) };
  }
  if ((match = line.match(/^Processing (\S+)/))) return { detail: short(`unpacking ${match[1]!.split("/").pop()}`) };
  if ((match = line.match(/^Building wheel for (\S+)/))) return { detail: short(`building ${match[1]}`) };
  if ((match = line.match(/^Installing collected packages: (.+)$/))) {
    const names = match[1]!.split(/,\s*/);
    return { detail: short(`installing ${names.length} package${names.length === 1 ? "" : "s"}: ${names.join(", ")}`) };
  }
  return {};
}

/** What to tell a person whose pip cannot reach its index: which one, why, and the two ways to name another. */
export function unreachableIndexMessage(indexes: readonly string[], reason: string, logFile: string): string {
  const where = indexes.length ? `its package index (${indexes[0]})` : "its package index (https://pypi.org/simple unless pip is told otherwise)";
  return (
    `pip cannot reach ${where}: ${reason}. It retries a few times before giving up. ` +
    "If this machine uses another index, set PIP_INDEX_URL=URL in the environment, or run `python3 -m pip config set global.index-url URL`; " +
    `pip's full output is in ${logFile}.`
  );
}
