/**
 * Kaggle credentials, found in the order the official CLI looks: an API token
 * (KAGGLE_API_TOKEN, holding the token or a path to it, else the access-token
 * file), then KAGGLE_USERNAME with KAGGLE_KEY, then kaggle.json. A credential
 * never appears in a message: errors name where a credential came from, not its value.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { UserError } from "../../errors.js";

/** How requests are signed, and where the secret came from (for messages). */
export type KaggleCredentials =
  | { kind: "token"; token: string; source: string }
  | { kind: "key"; username: string; key: string; source: string };

/** Where to create credentials, for the message when there are none. */
export const CREATE_TOKEN_HINT = "Create an API token at https://www.kaggle.com/settings (API section), then set KAGGLE_API_TOKEN, or save kaggle.json in ~/.kaggle (chmod 600).";

function readTrimmed(file: string): string | undefined {
  try {
    const text = fs.readFileSync(file, "utf8").trim();
    return text || undefined;
  } catch {
    return undefined;
  }
}

/** The folder kaggle.json lives in: KAGGLE_CONFIG_DIR, else ~/.kaggle, else (Linux, when ~/.kaggle is missing) the XDG config folder. */
export function kaggleConfigDir(env: Readonly<Record<string, string | undefined>>): string {
  if (env.KAGGLE_CONFIG_DIR) return env.KAGGLE_CONFIG_DIR;
  const home = env.HOME || os.homedir();
  const legacy = path.join(home, ".kaggle");
  if (fs.existsSync(legacy) || process.platform !== "linux") return legacy;
  return path.join(env.XDG_CONFIG_HOME || path.join(home, ".config"), "kaggle");
}

/** Find credentials; `warn` hears about a credentials file other users can read. */
export function findCredentials(env: Readonly<Record<string, string | undefined>>, warn: (message: string) => void): KaggleCredentials {
  const home = env.HOME || os.homedir();
  const fromEnv = env.KAGGLE_API_TOKEN?.trim();
  if (fromEnv) {
    // The variable holds the token itself, or the path of a file that does.
    const token = fs.existsSync(fromEnv) ? readTrimmed(fromEnv) : fromEnv;
    if (token) return { kind: "token", token, source: "KAGGLE_API_TOKEN" };
  }
  for (const name of ["access_token", "access_token.txt"]) {
    const file = path.join(home, ".kaggle", name);
    const token = readTrimmed(file);
    if (token) {
      warnIfShared(file, warn);
      return { kind: "token", token, source: file };
    }
  }
  if (env.KAGGLE_USERNAME && env.KAGGLE_KEY) return { kind: "key", username: env.KAGGLE_USERNAME, key: env.KAGGLE_KEY, source: "KAGGLE_USERNAME and KAGGLE_KEY" };

  const file = path.join(kaggleConfigDir(env), "kaggle.json");
  const text = readTrimmed(file);
  if (text) {
    warnIfShared(file, warn);
    let parsed: { username?: unknown; key?: unknown };
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      throw new UserError(`${file} is not valid JSON.`, "It should read {\"username\": \"...\", \"key\": \"...\"}; download a fresh one from https://www.kaggle.com/settings.");
    }
    if (typeof parsed.username === "string" && typeof parsed.key === "string" && parsed.username && parsed.key) {
      return { kind: "key", username: parsed.username, key: parsed.key, source: file };
    }
    throw new UserError(`${file} has no username and key.`, "Download a fresh kaggle.json from https://www.kaggle.com/settings.");
  }
  throw new UserError("No Kaggle credentials found (KAGGLE_API_TOKEN, ~/.kaggle/access_token, KAGGLE_USERNAME and KAGGLE_KEY, or kaggle.json).", CREATE_TOKEN_HINT, 1);
}

function warnIfShared(file: string, warn: (message: string) => void): void {
  try {
    if ((fs.statSync(file).mode & 0o044) !== 0) warn(`${file} is readable by other users on this machine; run \`chmod 600 ${file}\`.`);
  } catch {
    // unreadable metadata: nothing to say
  }
}

/** The Authorization header value for `credentials`. */
export function authorization(credentials: KaggleCredentials): string {
  return credentials.kind === "token" ? `Bearer ${credentials.token}` : `Basic ${Buffer.from(`${credentials.username}:${credentials.key}`).toString("base64")}`;
}
