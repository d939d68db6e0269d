/**
 * The YAML parser, loaded on first use: most commands read no YAML file (a project without alekseylearn.yml or
 * environment.yml), and loading it would cost every command's start-up about 80 ms. Synchronous, as its callers are.
 */
import { createRequire } from "node:module";
import type * as Yaml from "yaml";

let loaded: typeof Yaml | undefined;

export function yaml(): typeof Yaml {
  loaded ??= createRequire(import.meta.url)("yaml") as typeof Yaml;
  return loaded;
}
