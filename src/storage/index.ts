/** The storage for a location, chosen by its scheme. */
import { UserError } from "../errors.js";
import { fileStorage } from "./file.js";
import { schemeOf } from "./location.js";
import type { Storage } from "./types.js";

/** The Storage that holds `location` (already normalised). */
export function storageFor(location: string): Storage {
  const scheme = schemeOf(location);
  if (scheme === undefined) return fileStorage;
  throw new UserError(
    `${scheme}:// locations are not supported yet (${location}).`,
    "This version reads and writes local folders only; s3:// arrives with the SageMaker backend and gs:// with Vertex AI.",
  );
}
