/**
 * A two-rank training script as a user writes it for torch.distributed
 * (pytorch.org/docs/stable/distributed.html): gloo on CPU, the rendezvous from
 * the environment (`init_process_group("gloo", init_method="env://")` reads
 * MASTER_ADDR, MASTER_PORT, WORLD_SIZE and RANK), an all_reduce of a tensor,
 * and rank 0 saving the model. It runs unchanged on every backend with two
 * hosts, and under torchrun; the Slurm tests use it too.
 */
import fs from "node:fs";
import path from "node:path";
import { TEST_CACHE } from "./cli.js";

/** requirements.txt of TWO_RANK_SCRIPT: CPU torch (from /opt/wheels through pip's configuration here). */
export const TWO_RANK_REQUIREMENTS = "torch\n";

/**
 * Each rank adds rank + 1 to a tensor of ones' all_reduce (so two ranks see 3.0), prints `rank R of W on HOST: sum S`,
 * and writes `rank-R.json` into its own model folder; rank 0 also writes `model.json` (what every rank summed, the world
 * size, and the variables it was given) — the job's model.
 */
export const TWO_RANK_SCRIPT = `import json
import os
import socket

import torch
import torch.distributed as dist

dist.init_process_group("gloo", init_method="env://")
rank, world = dist.get_rank(), dist.get_world_size()
value = torch.tensor([float(rank + 1)])
dist.all_reduce(value)
seen = {name: os.environ.get(name) for name in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "NODE_RANK", "LOCAL_RANK",
                                                 "SM_CURRENT_HOST", "SM_HOSTS", "SM_MASTER_ADDR", "SM_MASTER_PORT")}
print("rank %d of %d on %s: sum %s" % (rank, world, os.environ.get("SM_CURRENT_HOST"), value.item()), flush=True)
model_dir = os.environ["SM_MODEL_DIR"]
with open(os.path.join(model_dir, "rank-%d.json" % rank), "w") as handle:
    json.dump({"rank": rank, "sum": value.item(), "hostname": socket.gethostname(), "env": seen}, handle)
if rank == 0:
    with open(os.path.join(model_dir, "model.json"), "w") as handle:
        json.dump({"sum": value.item(), "world": world, "env": seen}, handle)
dist.barrier()
dist.destroy_process_group()
`;

/** What each rank sums with two ranks: 1 + 2. */
export const TWO_RANK_SUM = 3;

/**
 * A one-package PEP 503 index (`file://…/simple`) holding this machine's CPU torch wheel (in /opt/wheels, which pip's
 * configuration reaches through find-links, not through an index an image build can be given): set as
 * PIP_EXTRA_INDEX_URL, an image build (which gets only the index settings) installs CPU torch from it, and the rest
 * of torch's requirements from PIP_INDEX_URL. It lies at one place in the test cache, so every build serves it at the
 * same URL and Docker's cache keeps the torch layer from one build (and test file) to the next. undefined when the
 * wheel is not on this machine.
 */
export function cpuTorchIndex(wheels = "/opt/wheels"): string | undefined {
  const wheel = fs.existsSync(wheels) ? fs.readdirSync(wheels).find((name) => /^torch-.*\+cpu-.*\.whl$/.test(name)) : undefined;
  if (!wheel) return undefined;
  const root = path.join(TEST_CACHE, "torch-cpu-index");
  fs.mkdirSync(path.join(root, "files"), { recursive: true });
  fs.mkdirSync(path.join(root, "simple", "torch"), { recursive: true });
  const link = path.join(root, "files", wheel);
  try {
    fs.symlinkSync(path.join(wheels, wheel), link);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  const href = `../../files/${encodeURIComponent(wheel)}`;
  const page = path.join(root, "simple", "torch", "index.html");
  const html = `<!DOCTYPE html><html><body><a href="${href}">${wheel}</a></body></html>\n`;
  // Written whole (another test file may read it now), and only when it changed.
  if (!fs.existsSync(page) || fs.readFileSync(page, "utf8") !== html) {
    fs.writeFileSync(`${page}.${process.pid}`, html);
    fs.renameSync(`${page}.${process.pid}`, page);
  }
  return `file://${root}/simple`;
}
