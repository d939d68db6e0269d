/** `alekseylearn build ARTIFACT --to REF`: the job's image, pushed with no Docker, printed by digest. */
import { UserError } from "../../errors.js";
import { build } from "../../jobs/build.js";
import type { CommandRun } from "../commands.js";

export const run: CommandRun = async (args, ctx, output) => {
  const { options, families } = args;
  if (typeof options.to !== "string") throw new UserError("alekseylearn build needs --to HOST/REPOSITORY[:TAG], the image to push.");
  // The library never reads the environment itself: the registry credentials are read here (the insecure hosts by main).
  const user = ctx.env.ALEKSEYLEARN_REGISTRY_USER;
  const password = ctx.env.ALEKSEYLEARN_REGISTRY_PASSWORD;
  const result = await build(
    {
      artifact: args.positionals[0]!,
      to: options.to,
      config: families.config ?? {},
      insecure: ctx.insecureRegistries ?? [],
      ...(typeof options.entry === "string" ? { entry: options.entry } : {}),
      ...(typeof options.envfile === "string" ? { envfile: options.envfile } : {}),
      ...(user && password !== undefined ? { credentials: { user, password } } : {}),
    },
    ctx,
  );
  output.out(
    options.json
      ? JSON.stringify({ image: result.image, digest: result.digest, layers: result.layers, pushed_bytes: result.pushedBytes }, null, 2) + "\n"
      : `${result.image}\n`,
  );
  return 0;
};
