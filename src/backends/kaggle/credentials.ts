/**
 * Kaggle credentials, found in the official CLI's order (github:Kaggle/kaggle-api,
 * src/kaggle/api/kaggle_api_extended.py, `KaggleApi.authenticate`; src/kaggle/__init__.py makes the API with
 * `enable_oauth` true only when KAGGLE_ENABLE_OAUTH is "1", "true" or "yes"):
 * 0. only with KAGGLE_ENABLE_OAUTH, and then first: the OAuth credentials of
 *    `kaggle auth login` (3. below);
 * 1. an access token: KAGGLE_API_TOKEN (the token, or the path of a file
 *    holding it), else ~/.kaggle/access_token (or access_token.txt); it is
 *    checked with IntrospectToken, and one Kaggle calls invalid or expired is
 *    passed over with a warning, as the CLI does;
 * 2. the legacy key: KAGGLE_USERNAME and KAGGLE_KEY over the values in
 *    kaggle.json (KAGGLE_CONFIG_DIR, ~/.kaggle, or the XDG config folder);
 * 3. (only with KAGGLE_ENABLE_OAUTH, tried first) OAuth credentials that `kaggle auth login` saved in
 *    ~/.kaggle/credentials.json: a refresh token and a short-lived access
 *    token, refreshed with GenerateAccessToken and saved back when it has
 *    expired or is about to (kagglesdk, `KaggleCredentials.get_access_token`).
 * Where the CLI departs from being followed: when Kaggle refuses the saved OAuth
 * login (401) the CLI deletes credentials.json; here the file is kept and a
 * warning says to log in again (a user's file is never removed).
 * A credential never appears in a message: errors name where a credential
 * came from, not its value.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { failure, UserError } from "../../errors.js";
import { postKaggle } from "./api.js";

/** How requests are signed, who they act for, and where the secret came from (for messages). */
export type KaggleCredentials =
  { kind: "token"; token: string; source: string; username?: string } | { kind: "key"; username: string; key: string; source: string };

/** Where to create credentials, for the message when there are none. */
export const CREATE_TOKEN_HINT =
  "Create an API token at https://www.kaggle.com/settings (API section), then set KAGGLE_API_TOKEN, or save kaggle.json in ~/.kaggle (chmod 600), or run `kaggle auth login` and set KAGGLE_ENABLE_OAUTH=1.";

/** How long before its expiry an OAuth access token is refreshed: a job is followed for a while with it. */
const REFRESH_MARGIN_MS = 30 * 60_000;
/** How long a refreshed OAuth access token is asked to last (kagglesdk's DEFAULT_ACCESS_TOKEN_EXPIRATION: 12 hours). */
const ACCESS_TOKEN_LIFETIME = "43200s";

type Env = Readonly<Record<string, string | undefined>>;

function readTrimmed(file: string): string | undefined {
  try {
    const text = fs.readFileSync(file, "utf8").trim();
    return text || undefined;
  } catch {
    return undefined;
  }
}

/** The folder kaggle.json lives in: KAGGLE_CONFIG_DIR, else ~/.kaggle, else (Linux, when ~/.kaggle is missing) the XDG config folder. */
export function kaggleConfigDir(env: Env): string {
  if (env.KAGGLE_CONFIG_DIR) return env.KAGGLE_CONFIG_DIR;
  const home = env.HOME || os.homedir();
  const legacy = path.join(home, ".kaggle");
  if (fs.existsSync(legacy) || process.platform !== "linux") return legacy;
  return path.join(env.XDG_CONFIG_HOME || path.join(home, ".config"), "kaggle");
}

/** The access token of the environment, where the CLI looks for one (kagglesdk `get_access_token_from_env`). */
function accessToken(env: Env, warn: (message: string) => void): { token: string; source: string } | undefined {
  const home = env.HOME || os.homedir();
  const fromEnv = env.KAGGLE_API_TOKEN?.trim();
  if (fromEnv) {
    // The variable holds the token itself, or the path of a file that does.
    const token = fs.existsSync(fromEnv) ? readTrimmed(fromEnv) : fromEnv;
    if (token) return { token, source: "KAGGLE_API_TOKEN" };
  }
  for (const name of ["access_token", "access_token.txt"]) {
    const file = path.join(home, ".kaggle", name);
    const token = readTrimmed(file);
    if (token) {
      warnIfShared(file, warn);
      return { token, source: file };
    }
  }
  return undefined;
}

/** The owner of `token`, or undefined when Kaggle says it is not active (invalid, expired or revoked). */
async function introspect(endpoint: string, token: string): Promise<string | undefined> {
  let reply: Awaited<ReturnType<typeof postKaggle>>;
  try {
    reply = await postKaggle(endpoint, "security.OAuthService", "IntrospectToken", { token }, `Bearer ${token}`);
  } catch (err) {
    throw failure(
      `Cannot reach the Kaggle API at ${endpoint}: ${(err as Error).cause ?? (err as Error).message}.`,
      "Check the network connection; nothing was changed on Kaggle.",
    );
  }
  // As the CLI: 400, 401, 403 and 404 mean the token is no good; other failures are Kaggle's.
  if ([400, 401, 403, 404].includes(reply.status)) return undefined;
  if (reply.status !== 200) throw failure(`Kaggle's IntrospectToken failed (${reply.status}).`, "Try again in a minute.");
  const answer = reply.answer as { active?: boolean; username?: string } | undefined;
  return answer?.active && answer.username ? answer.username : undefined;
}

/** The legacy key: KAGGLE_USERNAME and KAGGLE_KEY over kaggle.json's values, as the CLI merges them. */
function legacyKey(env: Env, warn: (message: string) => void): KaggleCredentials | undefined {
  const file = path.join(kaggleConfigDir(env), "kaggle.json");
  const text = readTrimmed(file);
  let fromFile: { username?: unknown; key?: unknown } = {};
  if (text && !(env.KAGGLE_USERNAME && env.KAGGLE_KEY)) {
    warnIfShared(file, warn);
    try {
      fromFile = JSON.parse(text) as typeof fromFile;
    } catch {
      throw new UserError(
        `${file} is not valid JSON.`,
        'It should read {"username": "...", "key": "..."}; download a fresh one from https://www.kaggle.com/settings.',
      );
    }
  }
  const username = env.KAGGLE_USERNAME || (typeof fromFile.username === "string" ? fromFile.username : "");
  const key = env.KAGGLE_KEY || (typeof fromFile.key === "string" ? fromFile.key : "");
  if (username && key) return { kind: "key", username, key, source: env.KAGGLE_USERNAME && env.KAGGLE_KEY ? "KAGGLE_USERNAME and KAGGLE_KEY" : file };
  if (text && !env.KAGGLE_USERNAME && !env.KAGGLE_KEY)
    throw new UserError(`${file} has no username and key.`, "Download a fresh kaggle.json from https://www.kaggle.com/settings.");
  return undefined;
}

/** What `kaggle auth login` saves (kagglesdk `KaggleCredentials.save`). */
interface OAuthFile {
  refresh_token?: string;
  access_token?: string;
  access_token_expiration?: string;
  username?: string;
  scopes?: string[];
}

/** An ISO time as Python's `datetime.isoformat` writes an aware UTC one, so the official CLI reads the file back. */
function pythonIsoTime(date: Date): string {
  return date.toISOString().replace("Z", "+00:00");
}

/** OAuth credentials from ~/.kaggle/credentials.json, the access token refreshed (and saved back) when it has expired or is about to. */
async function oauth(env: Env, endpoint: string, warn: (message: string) => void): Promise<KaggleCredentials | undefined> {
  const file = path.join(env.HOME || os.homedir(), ".kaggle", "credentials.json");
  const text = readTrimmed(file);
  if (!text) return undefined;
  let saved: OAuthFile;
  try {
    saved = JSON.parse(text) as OAuthFile;
  } catch {
    return undefined; // as the CLI: an unreadable file is no credentials
  }
  if (!saved.refresh_token) return undefined;
  warnIfShared(file, warn);
  const expires = Date.parse(saved.access_token_expiration ?? "");
  if (saved.access_token && Number.isFinite(expires) && expires - Date.now() > REFRESH_MARGIN_MS) {
    return { kind: "token", token: saved.access_token, source: file, ...(saved.username ? { username: saved.username } : {}) };
  }
  let reply: Awaited<ReturnType<typeof postKaggle>>;
  try {
    reply = await postKaggle(endpoint, "users.AccountService", "GenerateAccessToken", {
      refreshToken: saved.refresh_token,
      apiVersion: "API_VERSION_V1",
      expirationDuration: ACCESS_TOKEN_LIFETIME,
    });
  } catch (err) {
    throw failure(
      `Cannot reach the Kaggle API at ${endpoint}: ${(err as Error).cause ?? (err as Error).message}.`,
      "Check the network connection; nothing was changed on Kaggle.",
    );
  }
  if (reply.status === 401) {
    warn(`Kaggle refused the OAuth credentials in ${file} (the login has expired or was revoked); run \`kaggle auth login\` again.`);
    return undefined;
  }
  const answer = reply.answer as { token?: string; expiresIn?: number; userName?: string } | undefined;
  if (reply.status !== 200 || !answer?.token)
    throw failure(
      `Kaggle's GenerateAccessToken failed (${reply.status}) while refreshing the OAuth credentials in ${file}.`,
      "Try again in a minute, or run `kaggle auth login` again.",
    );
  const username = saved.username || answer.userName || undefined;
  const refreshed: OAuthFile = {
    ...saved,
    access_token: answer.token,
    access_token_expiration: pythonIsoTime(new Date(Date.now() + (answer.expiresIn ?? 43_200) * 1000)),
    ...(username ? { username } : {}),
  };
  // Saved back as the CLI saves it (mode 600), through a temporary file so a crash never leaves half a file.
  const temporary = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, JSON.stringify(refreshed, null, 2), { mode: 0o600 });
  fs.renameSync(temporary, file);
  return { kind: "token", token: answer.token, source: file, ...(username ? { username } : {}) };
}

/** True when the official CLI would look for `kaggle auth login`'s credentials: KAGGLE_ENABLE_OAUTH is "1", "true" or "yes" (src/kaggle/__init__.py). */
export function oauthEnabled(env: Env): boolean {
  return ["1", "true", "yes"].includes(env.KAGGLE_ENABLE_OAUTH ?? "");
}

/** Find credentials in the official CLI's order, checking an access token with Kaggle at `endpoint`; `warn` hears about a token passed over and a credentials file other users can read. */
export async function findCredentials(env: Env, endpoint: string, warn: (message: string) => void): Promise<KaggleCredentials> {
  if (oauthEnabled(env)) {
    const login = await oauth(env, endpoint, warn);
    if (login) return login;
  }
  const token = accessToken(env, warn);
  if (token) {
    const username = await introspect(endpoint, token.token);
    if (username) return { kind: "token", token: token.token, source: token.source, username };
    warn(`Ignoring the Kaggle access token from ${token.source}: Kaggle says it is invalid or expired.`);
  }
  const key = legacyKey(env, warn);
  if (key) return key;
  const loginFile = path.join(env.HOME || os.homedir(), ".kaggle", "credentials.json");
  const unused = !oauthEnabled(env) && fs.existsSync(loginFile) ? `; ${loginFile} is read only with KAGGLE_ENABLE_OAUTH=1, as by the official CLI` : "";
  throw new UserError(
    `No Kaggle credentials found (${token ? `the access token from ${token.source} is invalid or expired; ` : ""}KAGGLE_API_TOKEN, ~/.kaggle/access_token, KAGGLE_USERNAME and KAGGLE_KEY, kaggle.json${oauthEnabled(env) ? ", or ~/.kaggle/credentials.json from `kaggle auth login`" : unused}).`,
    CREATE_TOKEN_HINT,
    1,
  );
}

/**
 * Where credentials would come from, found without asking Kaggle (for a dry run): the first the CLI's
 * order finds, and the user name when it is written down (a legacy key, KAGGLE_USERNAME, the login file).
 * An access token is not checked, so one Kaggle would refuse still counts here.
 */
export function credentialsWithoutAsking(env: Env, warn: (message: string) => void): { source: string; username?: string } | undefined {
  const named = env.KAGGLE_USERNAME ? { username: env.KAGGLE_USERNAME } : {};
  const file = path.join(env.HOME || os.homedir(), ".kaggle", "credentials.json");
  if (oauthEnabled(env)) {
    try {
      const saved = JSON.parse(readTrimmed(file) ?? "") as OAuthFile;
      if (saved.refresh_token) return { source: file, ...(saved.username ? { username: saved.username } : named) };
    } catch {
      // no login file
    }
  }
  const token = accessToken(env, warn);
  if (token) return { source: token.source, ...named };
  const key = legacyKey(env, warn);
  if (key) return { source: key.source, ...(key.kind === "key" ? { username: key.username } : named) };
  return undefined;
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
