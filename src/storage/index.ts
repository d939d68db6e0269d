/** The storage for a location, chosen by its scheme; cloud storages are loaded only when used. */
import type { Context } from "../context.js";
import { UserError } from "../errors.js";
import { fileStorage } from "./file.js";
import { schemeOf } from "./location.js";
import type { Storage } from "./types.js";

/** Cloud storages made for a context, by scheme: one client (and one credential lookup) per command. */
const made = new WeakMap<Context, Map<string, Promise<Storage>>>();

/** The Storage that holds `location` (already normalised), set up from the context (credentials, endpoints). */
export async function storageFor(location: string, ctx: Context): Promise<Storage> {
  const scheme = schemeOf(location);
  if (scheme === undefined) return fileStorage;
  if (scheme !== "s3" && scheme !== "gs")
    throw new UserError(`${scheme}:// locations are not supported yet (${location}).`, "This version reads and writes local folders, s3:// and gs://.");
  const byScheme = made.get(ctx) ?? new Map<string, Promise<Storage>>();
  made.set(ctx, byScheme);
  let storage = byScheme.get(scheme);
  if (!storage) {
    storage = scheme === "gs" ? import("./gcs.js").then((module) => module.gcsStorage(ctx)) : import("./s3.js").then((module) => module.s3Storage(ctx));
    byScheme.set(scheme, storage);
  }
  return storage;
}
