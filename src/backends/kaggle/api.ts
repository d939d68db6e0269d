/**
 * A typed client for the Kaggle API the official CLI uses (kagglesdk): every
 * call is `POST {endpoint}/v1/{service}/{method}` with a JSON body whose field
 * names are the camelCase names of kagglesdk's FieldMetadata. Only the calls
 * and fields alekseylearn needs are declared.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { failure, UserError } from "../../errors.js";
import { authorization, CREATE_TOKEN_HINT, type KaggleCredentials } from "./credentials.js";

/** The production endpoint; KAGGLE_API_ENDPOINT overrides it (tests point it at a local server). */
export const DEFAULT_ENDPOINT = "https://api.kaggle.com";

/** kernels.KernelsApiService/SaveKernel request (ApiSaveKernelRequest). */
export interface SaveKernelRequest {
  slug: string;
  newTitle: string;
  text: string;
  language: "python";
  kernelType: "script" | "notebook";
  isPrivate: boolean;
  enableGpu: boolean;
  enableTpu: boolean;
  enableInternet: boolean;
  datasetDataSources: string[];
  competitionDataSources: string[];
  kernelDataSources: string[];
  modelDataSources: string[];
  categoryIds: string[];
  dockerImagePinningType?: "original" | "latest";
  machineShape?: string;
  sessionTimeoutSeconds?: number;
}

/** ApiSaveKernelResponse. */
export interface SaveKernelResponse {
  ref?: string;
  url?: string;
  versionNumber?: number;
  error?: string;
  invalidTags?: string[];
  invalidDatasetSources?: string[];
  invalidCompetitionSources?: string[];
  invalidKernelSources?: string[];
  invalidModelSources?: string[];
  kernelId?: number;
}

/** KernelWorkerStatus, as the API spells it now (upper case); older servers answer in lower case. */
export type KernelWorkerStatus = "QUEUED" | "RUNNING" | "COMPLETE" | "ERROR" | "CANCEL_REQUESTED" | "CANCEL_ACKNOWLEDGED" | "NEW_SCRIPT";

/** ApiGetKernelSessionStatusResponse. */
export interface SessionStatus {
  status?: string;
  failureMessage?: string;
}

/** One output file of a kernel session (ApiKernelSessionOutputFile). */
export interface OutputFile {
  url?: string;
  fileName?: string;
}

/** ApiListKernelSessionOutputResponse. */
export interface SessionOutputPage {
  files?: OutputFile[];
  log?: string;
  nextPageToken?: string;
}

/** ApiStartBlobUploadResponse. */
export interface BlobUpload {
  token?: string;
  createUrl?: string;
}

/** ApiCreateDatasetResponse. */
export interface CreateDatasetResponse {
  ref?: string;
  url?: string;
  status?: string;
  error?: string;
}

/** Normalise a status as either API generation spells it ("complete", "COMPLETE", "KernelWorkerStatus.COMPLETE"). */
export function parseStatus(status: string | undefined): KernelWorkerStatus | undefined {
  const name = (status ?? "").split(".").pop()!.toUpperCase().replace(/[\s-]/g, "_");
  const known: KernelWorkerStatus[] = ["QUEUED", "RUNNING", "COMPLETE", "ERROR", "CANCEL_REQUESTED", "CANCEL_ACKNOWLEDGED", "NEW_SCRIPT"];
  return known.find((value) => value === name);
}

/** Calls to the Kaggle API with one set of credentials. Retries rate limits and server errors with backoff. */
export class KaggleApi {
  constructor(
    readonly credentials: KaggleCredentials,
    readonly endpoint: string = DEFAULT_ENDPOINT,
    private readonly retries = 4,
  ) {}

  /** Call `service/method` with `body`; a Kaggle error becomes a UserError that names the call, never the credentials. */
  async call<T>(service: string, method: string, body: object): Promise<T> {
    const url = `${this.endpoint.replace(/\/+$/, "")}/v1/${service}/${method}`;
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await fetch(url, {
          method: "POST",
          headers: { "Content-Type": "application/json", Authorization: authorization(this.credentials), "User-Agent": "alekseylearn" },
          body: JSON.stringify(body),
        });
      } catch (err) {
        if (attempt < this.retries) {
          await sleep(500 * 2 ** attempt);
          continue;
        }
        throw failure(`Cannot reach the Kaggle API at ${this.endpoint}: ${(err as Error).cause ?? (err as Error).message}.`, "Check the network connection; nothing was changed on Kaggle.");
      }
      const text = await response.text();
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : {};
      } catch {
        parsed = undefined;
      }
      const message = (parsed as { message?: string } | undefined)?.message ?? text.slice(0, 200);
      if (response.ok && parsed !== undefined && !((parsed as { code?: number }).code! >= 400)) return parsed as T;
      if ((response.status === 429 || response.status >= 500) && attempt < this.retries) {
        const retryAfter = Number(response.headers.get("retry-after"));
        await sleep(Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : 1000 * 2 ** attempt);
        continue;
      }
      if (response.status === 401 || response.status === 403) {
        throw new UserError(`Kaggle refused the credentials from ${this.credentials.source} (${response.status} on ${method}): ${message}`, CREATE_TOKEN_HINT, 1);
      }
      if (response.status === 429) throw failure(`Kaggle is rate-limiting ${method} (429): ${message}`, "Wait a minute and try again.");
      throw failure(`Kaggle's ${method} failed (${response.status}): ${message}`);
    }
  }

  /** The user the credentials belong to: the key's username, or the token's owner (security.OAuthService/IntrospectToken). */
  async username(): Promise<string> {
    if (this.credentials.kind === "key") return this.credentials.username;
    const answer = await this.call<{ active?: boolean; username?: string }>("security.OAuthService", "IntrospectToken", { token: this.credentials.token });
    if (!answer.active || !answer.username) throw new UserError(`The Kaggle token from ${this.credentials.source} is not active (expired or revoked).`, CREATE_TOKEN_HINT, 1);
    return answer.username;
  }

  saveKernel(request: SaveKernelRequest): Promise<SaveKernelResponse> {
    return this.call("kernels.KernelsApiService", "SaveKernel", request);
  }

  sessionStatus(userName: string, kernelSlug: string): Promise<SessionStatus> {
    return this.call("kernels.KernelsApiService", "GetKernelSessionStatus", { userName, kernelSlug });
  }

  sessionOutput(userName: string, kernelSlug: string, pageToken?: string, pageSize?: number): Promise<SessionOutputPage> {
    return this.call("kernels.KernelsApiService", "ListKernelSessionOutput", { userName, kernelSlug, ...(pageSize ? { pageSize } : {}), ...(pageToken ? { pageToken } : {}) });
  }

  /** Every output file of a session, following pagination to the end, and the log (from the first page). */
  async allSessionOutput(userName: string, kernelSlug: string): Promise<{ files: Required<OutputFile>[]; log?: string }> {
    const files: Required<OutputFile>[] = [];
    let log: string | undefined;
    let token: string | undefined;
    do {
      const page = await this.sessionOutput(userName, kernelSlug, token, 500);
      log ??= page.log;
      for (const file of page.files ?? []) if (file.url && file.fileName) files.push({ url: file.url, fileName: file.fileName });
      token = page.nextPageToken || undefined;
    } while (token);
    return { files, ...(log ? { log } : {}) };
  }

  cancelSession(kernelSessionId: number): Promise<{ errorMessage?: string }> {
    return this.call("kernels.KernelsApiService", "CancelKernelSession", { kernelSessionId });
  }

  startBlobUpload(name: string, contentLength: number, lastModifiedEpochSeconds: number): Promise<BlobUpload> {
    return this.call("blobs.BlobApiService", "StartBlobUpload", { type: "DATASET", name, contentLength, lastModifiedEpochSeconds });
  }

  createDataset(request: { ownerSlug: string; slug: string; title: string; isPrivate: boolean; licenseName: string; files: Array<{ token: string }> }): Promise<CreateDatasetResponse> {
    return this.call("datasets.DatasetApiService", "CreateDataset", request);
  }

  createDatasetVersion(ownerSlug: string, datasetSlug: string, fileToken: string, versionNotes: string): Promise<CreateDatasetResponse> {
    return this.call("datasets.DatasetApiService", "CreateDatasetVersion", { ownerSlug, datasetSlug, body: { versionNotes, deleteOldVersions: false, files: [{ token: fileToken }] } });
  }

  datasetStatus(ownerSlug: string, datasetSlug: string): Promise<{ status?: string }> {
    return this.call("datasets.DatasetApiService", "GetDatasetStatus", { ownerSlug, datasetSlug });
  }
}
