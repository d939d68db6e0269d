/**
 * The Vertex AI backend's `doctor` checks: where Application Default
 * Credentials come from (never their content) and that they give a token, the
 * project and region, that the APIs a job uses are enabled in the project
 * (Service Usage `services.get`, whose answer has `state: ENABLED | DISABLED`:
 * cloud.google.com/service-usage/docs/reference/rest/v1/services/get), the
 * output bucket (exists; writable, by writing and deleting a 0-byte object),
 * and the image builder.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Context } from "../../context.js";
import { UserError } from "../../errors.js";
import { imageBuilderChecks } from "../../package/builder-check.js";
import type { DoctorCheck } from "../types.js";
import { googleSession, type GoogleSession } from "./auth.js";
import { credentialSource, gcloudConfigDir, resolveProject, storageEndpoint } from "./google.js";
import type { VertexSpec } from "./schema.js";

/** The APIs a Vertex job needs enabled: training, the image's repository, its logs, its outputs. */
export const REQUIRED_SERVICES = ["aiplatform.googleapis.com", "artifactregistry.googleapis.com", "logging.googleapis.com", "storage.googleapis.com"];

/** Service Usage's root URL: its override (gcloud's api_endpoint_overrides name) or Google's. */
function serviceUsageEndpoint(env: Context["env"]): string {
  return (env.CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE || "https://serviceusage.googleapis.com").replace(/\/+$/, "");
}

function failed(err: unknown): { detail: string; fix?: string } {
  if (err instanceof UserError) return { detail: err.message.replace(/\.$/, ""), ...(err.hint ? { fix: err.hint } : {}) };
  throw err;
}

/** True when this machine shows a Google setup: a credentials file or a project named in the environment. */
function configured(env: Context["env"]): boolean {
  return Boolean(
    env.GOOGLE_APPLICATION_CREDENTIALS ||
    env.GOOGLE_CLOUD_PROJECT ||
    env.CLOUDSDK_CORE_PROJECT ||
    fs.existsSync(path.join(gcloudConfigDir(env), "application_default_credentials.json")),
  );
}

async function serviceChecks(session: GoogleSession, project: string, ctx: Context): Promise<DoctorCheck> {
  const disabled: string[] = [];
  for (const service of REQUIRED_SERVICES) {
    const url = `${serviceUsageEndpoint(ctx.env)}/v1/projects/${encodeURIComponent(project)}/services/${service}`;
    const response = await fetch(url, { headers: await session.headers(url), signal: AbortSignal.timeout(15_000) });
    const body = (await response.json().catch(() => ({}))) as { state?: string; error?: { message?: string } };
    if (!response.ok)
      return {
        check: "APIs enabled",
        status: "fail",
        detail: `Service Usage refused services.get for ${service} (${response.status}): ${body.error?.message ?? ""}`.trim(),
        fix: "Your identity needs serviceusage.services.get on the project (roles/serviceusage.serviceUsageViewer), or check the project id.",
      };
    if (body.state !== "ENABLED") disabled.push(service);
  }
  if (disabled.length)
    return {
      check: "APIs enabled",
      status: "fail",
      detail: `not enabled in ${project}: ${disabled.join(", ")}`,
      fix: `gcloud services enable ${disabled.join(" ")} --project ${project}`,
    };
  return { check: "APIs enabled", status: "ok", detail: REQUIRED_SERVICES.map((service) => service.split(".")[0]).join(", ") };
}

/**
 * Write and delete a 0-byte object under the gs:// output path, as the storage library uploads: a resumable upload
 * (objects.insert, uploadType=resumable; its start answers 404 when the bucket does not exist), finished by one PUT
 * with `Content-Range: bytes *\/0` (cloud.google.com/storage/docs/performing-resumable-uploads), then objects.delete.
 */
async function bucketChecks(session: GoogleSession, outputPath: string, ctx: Context): Promise<DoctorCheck[]> {
  const [, bucket = "", prefix = ""] = /^gs:\/\/([^/]+)\/?(.*)$/.exec(outputPath) ?? [];
  const root = storageEndpoint(ctx.env);
  const key = `${prefix.replace(/\/+$/, "")}${prefix ? "/" : ""}.alekseylearn-doctor-${randomBytes(6).toString("hex")}`;
  const shown = `gs://${bucket}/${key}`;
  const refused = (status: number): DoctorCheck[] => [
    { check: "output bucket", status: "ok", detail: `gs://${bucket} exists` },
    {
      check: "output writable",
      status: "fail",
      detail: `writing the 0-byte ${shown} was refused (${status})`,
      fix: "Ask for storage.objects.create and storage.objects.delete on the bucket (roles/storage.objectUser), or pick another config.output_path.",
    },
  ];
  const start = `${root}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable&name=${encodeURIComponent(key)}`;
  const begun = await fetch(start, { method: "POST", headers: { ...(await session.headers(start)), "content-type": "application/json" }, body: "{}" });
  if (begun.status === 404)
    return [
      {
        check: "output bucket",
        status: "fail",
        detail: `the bucket ${bucket} does not exist`,
        fix: `Create it (gcloud storage buckets create gs://${bucket}) or pick another config.output_path.`,
      },
    ];
  const upload = begun.headers.get("location");
  if (!begun.ok || !upload) return refused(begun.status);
  const put = await fetch(upload, { method: "PUT", headers: { ...(await session.headers(upload)), "content-range": "bytes */0" }, body: new Uint8Array() });
  if (!put.ok) return refused(put.status);
  const remove = `${root}/storage/v1/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(key)}`;
  const removed = await fetch(remove, { method: "DELETE", headers: await session.headers(remove) });
  return [
    { check: "output bucket", status: "ok", detail: `gs://${bucket} exists` },
    removed.ok
      ? { check: "output writable", status: "ok", detail: `wrote and deleted the 0-byte ${shown}` }
      : {
          check: "output writable",
          status: "fail",
          detail: `wrote the 0-byte ${shown}, but deleting it was refused (${removed.status})`,
          fix: "Delete it by hand; jobs need storage.objects.delete to replace their outputs.",
        },
  ];
}

/** The Vertex AI backend's checks for `spec` (its project, region and output path). */
export async function vertexDoctor(spec: VertexSpec, ctx: Context, options: { asked: boolean }): Promise<DoctorCheck[]> {
  if (!options.asked && !configured(ctx.env)) return [];
  const checks: DoctorCheck[] = [];
  let session: GoogleSession;
  try {
    const source = credentialSource(ctx.env);
    session = await googleSession(ctx.env, { quotaProject: spec.settings.quota_project });
    await session.accessToken();
    checks.push({ check: "credentials", status: "ok", detail: `from ${source.from}` });
  } catch (err) {
    checks.push({ check: "credentials", status: "fail", ...failed(err) });
    return [...checks, { check: "project", status: "skip", detail: "needs credentials" }, ...(await imageBuilderChecks(ctx, spec.settings.builder))];
  }
  const chosen = resolveProject(spec.settings.project, ctx.env);
  if (!chosen) {
    checks.push({
      check: "project",
      status: "fail",
      detail: "no project is named",
      fix: "Pass --config.project=PROJECT_ID, set GOOGLE_CLOUD_PROJECT, or run `gcloud config set project PROJECT_ID`.",
    });
    return [...checks, ...(await imageBuilderChecks(ctx, spec.settings.builder))];
  }
  checks.push({ check: "project", status: "ok", detail: `${chosen.project} (from ${chosen.from}), region ${spec.settings.region}` });
  try {
    checks.push(await serviceChecks(session, chosen.project, ctx));
  } catch (err) {
    checks.push({ check: "APIs enabled", status: "fail", detail: `Service Usage cannot be asked: ${(err as Error).cause ?? (err as Error).message}` });
  }
  if (!spec.outputPath)
    checks.push({
      check: "output bucket",
      status: "skip",
      detail: "no config.output_path given",
      fix: "Pass --config.output_path=gs://BUCKET/PREFIX, or set output_path in alekseylearn.yml.",
    });
  else {
    try {
      checks.push(...(await bucketChecks(session, spec.outputPath, ctx)));
    } catch (err) {
      checks.push({ check: "output bucket", status: "fail", detail: `Cloud Storage cannot be asked: ${(err as Error).cause ?? (err as Error).message}` });
    }
  }
  checks.push(...(await imageBuilderChecks(ctx, spec.settings.builder)));
  return checks;
}
