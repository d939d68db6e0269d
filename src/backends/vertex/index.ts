/**
 * The Vertex AI backend as far as it is built: its settings, the checks a
 * spec must pass, and `fit --dry-run`'s plan. It is not in the backends'
 * table yet (submitting, following and the image push are still to
 * come), so `--backend vertex` still says it is not available.
 */
import type { SpecRules } from "../../spec/types.js";
import { planVertex } from "./dry-run.js";
import { planProblems } from "./plan.js";
import { vertexSchema } from "./schema.js";

/** What building a spec for Vertex AI needs (its settings and its checks), and the dry run's plan. */
export const vertexRules = {
  name: "vertex",
  summary: "Google Cloud Vertex AI custom jobs (ML Engine's successor), in a container built from the artifact.",
  schema: vertexSchema,
  check: planProblems,
  plan: planVertex,
} satisfies SpecRules<typeof vertexSchema> & { summary: string; plan: typeof planVertex };
