/**
 * A two-rank training script as a user writes it for torch.distributed
 * (pytorch.org/docs/stable/distributed.html): gloo on CPU, the rendezvous from
 * the environment (`init_process_group("gloo", init_method="env://")` reads
 * MASTER_ADDR, MASTER_PORT, WORLD_SIZE and RANK), an all_reduce of a tensor,
 * and rank 0 saving the model. It runs unchanged on every backend with two
 * hosts, and under torchrun; the Slurm tests use it too.
 */

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
