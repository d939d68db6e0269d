/**
 * Keeping credentials out of what alekseylearn writes down (job records,
 * `--json` output, messages): credentials inside URLs, and the values of
 * free-form KEY=VALUE settings whose key names a secret. Each function is pure.
 */

/** What a redacted value is replaced with. */
export const REDACTED = "***";

/** A URL's scheme and user information (`https://user:password@`); the user information is group 2. */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^/\s@"'<>]+)@/gi;

/** A URL's query parameter (`?token=VALUE`, `&sig=VALUE`): name in group 2, value in group 3. */
const QUERY_PARAMETER = /([?&])([A-Za-z0-9_.-]+)=([^&#\s"'<>]*)/g;

/** True when user information holds a literal credential, not only `${VARIABLE}` references (pip expands those itself, from the environment of the machine that installs). */
function isLiteralCredential(userinfo: string): boolean {
  return userinfo.replace(/\$\{[A-Za-z_][A-Za-z0-9_]*\}/g, "").replace(/:/g, "") !== "";
}

/** True when `text` holds a URL with a literal credential in it (`https://user:token@host`, `https://token@host`, `?token=…`). */
export function hasUrlCredentials(text: string): boolean {
  for (const match of text.matchAll(URL_USERINFO)) if (isLiteralCredential(match[2]!)) return true;
  for (const match of text.matchAll(QUERY_PARAMETER)) if (match[3] && match[3] !== REDACTED && isSecretParameter(match[2]!)) return true;
  return false;
}

/** `text` with the credentials of every URL in it replaced: the whole user information (a lone user name is often a token), and query values whose name names a secret. */
export function redactUrls(text: string): string {
  return text
    .replace(URL_USERINFO, (whole, scheme: string, userinfo: string) => (isLiteralCredential(userinfo) ? `${scheme}${REDACTED}@` : whole))
    .replace(QUERY_PARAMETER, (whole, lead: string, name: string, value: string) => (value && isSecretParameter(name) ? `${lead}${name}=${REDACTED}` : whole));
}

/** True for a query parameter that carries a credential: one whose name names a secret, or a signed URL's signature (`sig`, S3's `X-Amz-Credential`). */
function isSecretParameter(name: string): boolean {
  return namesSecret(name) || /^(sig|x-amz-credential)$/i.test(name);
}

/** Words that name a secret on their own. `TOKENS` (as in MAX_TOKENS) is not one: only the whole word counts. */
const SECRET_WORDS = new Set(["SECRET", "TOKEN", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL", "CREDENTIALS", "APIKEY", "SIGNATURE"]);
/** Words that name a secret after one of these: API_KEY, ACCESS_KEY, PRIVATE_KEY, SECRET_KEY. */
const KEY_QUALIFIERS = new Set(["API", "ACCESS", "PRIVATE", "SECRET", "SIGNING", "ENCRYPTION"]);

/** True when the name (`WANDB_API_KEY`, `hfToken`, `db-password`) names a secret as a whole word; `MAX_TOKENS`, `KEY_COLUMN` do not. */
export function namesSecret(name: string): boolean {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2") // camelCase words
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((word) => word.toUpperCase());
  return words.some((word, i) => SECRET_WORDS.has(word) || (word === "KEY" && i > 0 && KEY_QUALIFIERS.has(words[i - 1]!)));
}

/** A free-form `KEY=VALUE` item with its value redacted when the key names a secret, and URL credentials redacted either way. */
export function redactPair(item: string): string {
  const at = item.indexOf("=");
  if (at > 0 && namesSecret(item.slice(0, at))) return `${item.slice(0, at)}=${REDACTED}`;
  return redactUrls(item);
}

/**
 * A copy of `value` (a provider request, say) fit to print: each text value of a member whose name names a secret
 * (`Environment.WANDB_API_KEY`) redacted, and URL credentials redacted everywhere, except under the members named
 * in `keep` (hyperparameters are the user's own values and shown as they are).
 */
export function redactDeep(value: unknown, keep: ReadonlySet<string> = new Set()): unknown {
  if (typeof value === "string") return redactUrls(value);
  if (Array.isArray(value)) return value.map((item) => redactDeep(item, keep));
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, member]) => [
        key,
        keep.has(key) ? member : typeof member === "string" && namesSecret(key) ? REDACTED : redactDeep(member, keep),
      ]),
    );
  }
  return value;
}

/** Shorter values are not looked for as text: a secret this short is no secret, and replacing it would garble what is printed. */
const MIN_SECRET_LENGTH = 4;

/**
 * The values of secret-named keys in a job's settings and hyperparameters: a setting or hyperparameter named as a
 * secret (`api_key`), and each `KEY=VALUE` item of a list setting (environment, tags, labels) whose key names one.
 * They are looked for as text in whatever is printed (a provider request embeds them in arguments, files and scripts).
 */
export function secretValues(settings: Readonly<Record<string, unknown>>, hyperparameters: Readonly<Record<string, unknown>> = {}): string[] {
  const found = new Set<string>();
  const add = (value: unknown): void => {
    const text = typeof value === "string" ? value : value === undefined || value === null ? "" : JSON.stringify(value);
    // A flag or a number (`use_token=true`) is no secret to look for as text: replacing every `true` would garble what is printed.
    if (text.length >= MIN_SECRET_LENGTH && text !== REDACTED && !/^(true|false|null|[-+.\d eE]+)$/i.test(text)) found.add(text);
  };
  for (const [key, value] of Object.entries(hyperparameters)) if (namesSecret(key)) add(value);
  for (const [key, value] of Object.entries(settings)) {
    if (namesSecret(key)) add(value);
    if (Array.isArray(value))
      for (const item of value) {
        const at = typeof item === "string" ? item.indexOf("=") : -1;
        if (at > 0 && namesSecret((item as string).slice(0, at))) add((item as string).slice(at + 1));
      }
  }
  return [...found];
}

/** `text` with every occurrence of each of `secrets` (as typed, and as JSON writes it inside a string) replaced, and URL credentials redacted. */
export function redactText(text: string, secrets: readonly string[] = []): string {
  let result = text;
  for (const secret of secrets) {
    for (const form of new Set([secret, JSON.stringify(secret).slice(1, -1)])) if (result.includes(form)) result = result.split(form).join(REDACTED);
  }
  return redactUrls(result);
}

/** A name/value pair's member names, as providers spell them: Vertex AI's `{name, value}` environment, SageMaker's `{Key, Value}` tags. */
const PAIR_NAMES = ["name", "Name", "key", "Key"];
const PAIR_VALUES = ["value", "Value"];

/**
 * A copy of `value` (a provider request, a plan, a record) fit to print, by the one rule everything printed follows:
 * the text value of a member whose name names a secret (`Environment.WANDB_API_KEY`), of a name/value pair whose name
 * does (`{"name": "HF_TOKEN", "value": …}`), of a `KEY=VALUE` item and of the argument after a `--KEY` whose key does;
 * every occurrence of `secrets` (see `secretValues`); and URL credentials everywhere.
 */
export function redactForPrint(value: unknown, secrets: readonly string[] = []): unknown {
  if (typeof value === "string") return redactText(/^[A-Za-z_][A-Za-z0-9_.-]*=/.test(value) ? redactPair(value) : value, secrets);
  if (Array.isArray(value))
    return value.map((item, i) => {
      const before = value[i - 1];
      const flag = typeof before === "string" && /^--?[A-Za-z0-9_.-]+$/.test(before) ? before.replace(/^--?/, "") : undefined;
      return typeof item === "string" && flag !== undefined && namesSecret(flag) ? REDACTED : redactForPrint(item, secrets);
    });
  if (value && typeof value === "object") {
    const record = value as Record<string, unknown>;
    const pairName = PAIR_NAMES.map((key) => record[key]).find((name) => typeof name === "string") as string | undefined;
    const secretPair = pairName !== undefined && namesSecret(pairName);
    return Object.fromEntries(
      Object.entries(record).map(([key, member]) => [
        key,
        (typeof member === "string" || typeof member === "number") && (namesSecret(key) || (secretPair && PAIR_VALUES.includes(key)))
          ? REDACTED
          : redactForPrint(member, secrets),
      ]),
    );
  }
  return value;
}
