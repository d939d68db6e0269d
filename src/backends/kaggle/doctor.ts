/**
 * The Kaggle backend's `doctor` checks: where the credentials come from (never
 * the secret), and whether Kaggle accepts them, with the user they act for.
 */
import type { Context } from "../../context.js";
import { UserError } from "../../errors.js";
import type { DoctorCheck } from "../types.js";
import { DEFAULT_ENDPOINT, KaggleApi } from "./api.js";
import { credentialsWithoutAsking, findCredentials } from "./credentials.js";

/** The kernel asked about to prove a legacy key: none has this slug, so Kaggle answers 404 to good credentials and 401/403 to bad ones. */
const PROBE_SLUG = "alekseylearn-doctor-probe";

/** The Kaggle backend's checks. */
export async function kaggleDoctor(ctx: Context, options: { asked: boolean }): Promise<DoctorCheck[]> {
  const quiet = (): void => {};
  const found = credentialsWithoutAsking(ctx.env, quiet);
  if (!options.asked && !found) return [];
  const endpoint = ctx.env.KAGGLE_API_ENDPOINT || DEFAULT_ENDPOINT;
  let api: KaggleApi;
  try {
    api = new KaggleApi(await findCredentials(ctx.env, endpoint, quiet), endpoint, 1);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    return [
      { check: "credentials", status: "fail", detail: err.message.replace(/\.$/, ""), ...(err.hint ? { fix: err.hint } : {}) },
      { check: "token valid", status: "skip", detail: "needs credentials" },
    ];
  }
  const { credentials } = api;
  const checks: DoctorCheck[] = [{ check: "credentials", status: "ok", detail: `from ${credentials.source}` }];
  // An access token was already checked by findCredentials (IntrospectToken names its user); a legacy key is tried on a read.
  if (credentials.kind === "token" && credentials.username) {
    checks.push({ check: "token valid", status: "ok", detail: `Kaggle accepts it, for the user ${credentials.username}` });
    return checks;
  }
  const user = credentials.kind === "key" ? credentials.username : (found?.username ?? "");
  try {
    await api.call("kernels.KernelsApiService", "GetKernelSessionStatus", { userName: user, kernelSlug: PROBE_SLUG });
    checks.push({ check: "token valid", status: "ok", detail: `Kaggle accepts it, for the user ${user}` });
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    if (/refused the credentials/.test(err.message))
      checks.push({ check: "token valid", status: "fail", detail: err.message, ...(err.hint ? { fix: err.hint } : {}) });
    else if (/\(404\)/.test(err.message)) checks.push({ check: "token valid", status: "ok", detail: `Kaggle accepts it, for the user ${user}` });
    else checks.push({ check: "token valid", status: "fail", detail: err.message.replace(/\.$/, ""), ...(err.hint ? { fix: err.hint } : {}) });
  }
  return checks;
}
