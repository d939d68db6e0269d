/** The storage for a location, chosen by its scheme; cloud storages are loaded only when used. */
import type { Context } from "../context.js";
import { UserError } from "../errors.js";
import { fileStorage } from "./file.js";
import { schemeOf } from "./location.js";
import type { Storage } from "./types.js";

/** The Storage that holds `location` (already normalised), set up from the context (credentials, endpoints). */
export async function storageFor(location: string, ctx: Context): Promise<Storage> {
  const scheme = schemeOf(location);
  if (scheme === undefined) return fileStorage;
  if (scheme === "s3") return (await import("./s3.js")).s3Storage(ctx);
  throw new UserError(`${scheme}:// locations are not supported yet (${location}).`, "This version reads and writes local folders and s3://; gs:// arrives with Vertex AI.");
}
