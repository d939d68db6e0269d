/**
 * Google credentials for the Vertex backend, with Google's own auth library
 * (Application Default Credentials), loaded only when a command needs them so
 * that `--help` and every other backend start without it.
 *
 * Why REST with google-auth-library rather than @google-cloud/aiplatform:
 * the backend calls a handful of REST methods (customJobs create, get,
 * cancel, list; entries.list; repositories get and create). The official
 * client's current line (7.x) requires Node 22, and every line brings
 * google-gax with gRPC and protobufjs and a generated client for all of
 * Vertex; google-auth-library (with gaxios, 1.8 MB installed) loads in about
 * 180 ms on this machine, and its requests are checked here against the
 * published API description as the official client's REST mode would send
 * them.
 *
 * No token is ever put in a message, a record or a log: errors name where
 * the credentials came from, never what they hold.
 */
import { failure, UserError } from "../../errors.js";
import { credentialSource, noCredentialsError, type CredentialSource } from "./google.js";
import { loadSdk } from "../../sdk.js";

type Env = Readonly<Record<string, string | undefined>>;

/** The OAuth scope every call of the backend needs (Vertex, Logging, Artifact Registry, Storage all accept it). */
export const CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform";

/** Google's OAuth 2.0 token endpoint, which the auth library calls to turn a key or refresh token into an access token. */
export const GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token";

/** An authorized way to call Google's REST APIs. */
export interface GoogleSession {
  /** Where the credentials came from, in words (never their content). */
  readonly source: string;
  /** A short-lived access token (for `docker login` on stdin); never print it. */
  accessToken(): Promise<string>;
  /**
   * The project Google bills and meters the calls to (x-goog-user-project), when there is one:
   * config.quota_project, else GOOGLE_CLOUD_QUOTA_PROJECT, else the credentials' own (an ADC file's quota_project_id).
   */
  readonly quotaProject: string | undefined;
  /** The Authorization header for a request to `url`, and x-goog-user-project when there is a quota project. */
  headers(url: string): Promise<Record<string, string>>;
}

/**
 * The quota project of the calls, in the order Google's auth libraries use: an explicit setting
 * (config.quota_project, as google-auth's `quota_project_id` option), GOOGLE_CLOUD_QUOTA_PROJECT
 * (google-auth-library's GoogleAuth applies it over the credentials'), then the credentials' own
 * `quota_project_id` (UserRefreshClient and JWT read it from the file; AuthClient sends it as
 * x-goog-user-project: google-auth-library, src/auth/authclient.ts, addSharedMetadataHeaders).
 */
export function quotaProjectOf(configured: string | undefined, env: Env, fromCredentials: string | undefined): string | undefined {
  return configured || env.GOOGLE_CLOUD_QUOTA_PROJECT || fromCredentials || undefined;
}

/**
 * A session from Application Default Credentials as `env` says where they are.
 * CLOUDSDK_AUTH_TOKEN_HOST (gcloud's auth/token_host) points the token
 * requests at another server, for tests and private endpoints; the library
 * itself names Google's token URL in its code, so its requests to that URL
 * are redirected on the way out.
 */
export async function googleSession(env: Env, options: { quotaProject?: string | undefined } = {}): Promise<GoogleSession> {
  const source: CredentialSource = credentialSource(env);
  const { GoogleAuth } = loadSdk<typeof import("google-auth-library")>("google-auth-library");
  const auth = new GoogleAuth({ scopes: [CLOUD_PLATFORM_SCOPE], ...(source.kind === "file" ? { keyFilename: source.file } : {}) });
  let client: Awaited<ReturnType<typeof auth.getClient>>;
  try {
    client = await auth.getClient();
  } catch (err) {
    throw noCredentialsError(`${source.from}: ${describeAuthError(err)}`);
  }
  const tokenHost = env.CLOUDSDK_AUTH_TOKEN_HOST?.replace(/\/+$/, "");
  if (tokenHost) {
    client.transporter.interceptors.request.add({
      resolved: async (config) => {
        if (String(config.url) === GOOGLE_TOKEN_URL) config.url = new URL(`${tokenHost}/token`);
        return config;
      },
    });
  }
  const token = async (): Promise<string> => {
    try {
      const { token } = await client.getAccessToken();
      if (!token) throw new Error("no access token was returned");
      return token;
    } catch (err) {
      throw noCredentialsError(`${source.from}: ${describeAuthError(err)}`);
    }
  };
  // The library reads the credentials file's quota_project_id into the client; its GOOGLE_CLOUD_QUOTA_PROJECT override is read from
  // the process's own environment, and not at all for a keyFilename, so the choice is made here from the command's own environment.
  const quotaProject = quotaProjectOf(options.quotaProject, env, (client as { quotaProjectId?: string }).quotaProjectId);
  return {
    source: source.from,
    quotaProject,
    accessToken: token,
    headers: async () => ({ authorization: `Bearer ${await token()}`, ...(quotaProject ? { "x-goog-user-project": quotaProject } : {}) }),
  };
}

/**
 * What went wrong getting a token, in the token endpoint's own words
 * (`invalid_grant: …`) or the library's message; the library's error object
 * also holds the request it made, which is never shown.
 */
export function describeAuthError(err: unknown): string {
  const response = (err as { response?: { data?: { error?: unknown; error_description?: unknown } } }).response?.data;
  if (response && typeof response.error === "string")
    return typeof response.error_description === "string" ? `${response.error}: ${response.error_description}` : response.error;
  const message = err instanceof Error ? err.message : String(err);
  // A message that quotes a bearer token or an assertion would leak it; such text is cut at the secret.
  return message.replace(/(Bearer\s+|assertion=|access_token["':=\s]+)[^\s"&,]+/gi, "$1***");
}

/** A Google API's error answer as a UserError: its status and message, with a hint for the common causes. */
export function apiError(what: string, status: number, body: unknown): UserError {
  const error = (body as { error?: { message?: unknown; status?: unknown } } | undefined)?.error;
  const message = typeof error?.message === "string" ? error.message : `HTTP ${status}`;
  const code = typeof error?.status === "string" ? ` (${error.status})` : "";
  const hint =
    status === 401
      ? "The credentials were refused: run `gcloud auth application-default login` again, or check the key file."
      : status === 403 && /requires a quota project/i.test(message)
        ? "Set a quota project: --config.quota_project=PROJECT_ID, GOOGLE_CLOUD_QUOTA_PROJECT, or `gcloud auth application-default set-quota-project PROJECT_ID` (it needs serviceusage.services.use there)."
        : status === 403
          ? "The caller lacks a permission named above: see the README's Vertex AI permissions, or ask the project's owner."
          : status === 404
            ? "Check config.project and config.region."
            : undefined;
  return failure(`${what} failed: ${message}${code}.`, hint);
}
