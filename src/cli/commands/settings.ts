/** `alekseylearn settings [BACKEND]`: a backend's settings with their types and defaults, or the backends. */
import { allBackends, getBackend } from "../../backends/registry.js";
import { describeType } from "../../spec/schema.js";
import type { CommandRun } from "../commands.js";
import { backendSettingsHelp, settingsHelp } from "./fit.js";

export const run: CommandRun = async (args, _ctx, output) => {
  const name = args.positionals[0];
  if (args.options.json) {
    const chosen = name ? [await getBackend(name)] : await allBackends();
    const described = chosen.map((backend) => ({
      backend: backend.name,
      summary: backend.summary,
      settings: Object.entries(backend.schema).map(([key, field]) => ({
        key,
        type: describeType(field.type),
        ...(field.default !== undefined ? { default: field.default } : {}),
        ...(field.aliases?.length ? { aliases: field.aliases } : {}),
        doc: field.doc,
      })),
    }));
    output.out(JSON.stringify(name ? described[0] : described, null, 2) + "\n");
    return 0;
  }
  output.out((name ? backendSettingsHelp(await getBackend(name)) : (await settingsHelp())[0]!) + "\n");
  return 0;
};
