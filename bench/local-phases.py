"""Where a local run's time goes, phase by phase, from the kernel's own process events (no tracing of our code).

    python3 bench/local-phases.py [RUNS] [PROJECT]      (root, with `perf`; build first: npm run build)

Runs `alekseylearn fit train.py` in PROJECT (default: a copy of examples/iris) RUNS times (default 7) under
`perf record -e sched:sched_process_{exec,fork,exit} -a`, and prints the median of each phase: Node until it forks
bwrap, bwrap until the job's init runs, the init until the script's process starts (a fork), the script, and the ends.
strace, used in earlier rounds, slows every fork and exec it follows; these tracepoints cost next to nothing.
"""

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVENT = re.compile(r"\s*(\S+)\s+(\d+)\s+\[\d+\]\s+([\d.]+):\s+sched:(\S+):\s*(.*)")
PHASES = [
    "node start → bwrap forked",
    "bwrap → init exec",
    "init exec → script forked",
    "script (its own run)",
    "script end → init end",
    "init end → bwrap end",
    "bwrap end → node end",
    "total",
]


def events(project, env):
    data = os.path.join(tempfile.gettempdir(), "alekseylearn-phases.data")
    perf = ["perf", "record", "-q", "-a", "-o", data]
    for name in ("exec", "fork", "exit"):
        perf += ["-e", "sched:sched_process_" + name]
    cli = os.path.join(REPO, "dist", "src", "cli", "main.js")
    subprocess.run([*perf, "--", "node", cli, "fit", "train.py"], cwd=project, env=env, check=True, capture_output=True)
    text = subprocess.run(["perf", "script", "-i", data], capture_output=True, text=True, check=True).stdout
    found = []
    for line in text.splitlines():
        match = EVENT.match(line)
        if match:
            comm, pid, at, kind, rest = match.groups()
            found.append((comm, int(pid), float(at) * 1000, kind, rest))
    return found


def own(found):
    """Only the events of `node`'s process tree (the machine's other processes are recorded too)."""
    node = next(e for e in found if e[3] == "sched_process_exec" and re.search(r"filename=\S*/node ", e[4]))
    tree, kept = {node[1]}, []
    for event in found:
        if event[1] not in tree or event[2] < node[2]:
            continue
        kept.append(event)
        if event[3] == "sched_process_fork":
            tree.add(int(event[4].split("child_pid=")[1].split()[0]))
    return kept


def phases(found):
    found = own(found)

    def first(test):
        return next(event for event in found if test(event))

    node = found[0]
    bwrap = first(lambda e: e[3] == "sched_process_exec" and "bwrap" in e[4])
    forked = first(lambda e: e[3] == "sched_process_fork" and "child_pid=%d " % bwrap[1] in e[4] + " ")
    init = first(lambda e: e[3] == "sched_process_exec" and "python" in e[4])
    script = first(lambda e: e[3] == "sched_process_fork" and e[1] == init[1])
    script_pid = int(script[4].split("child_pid=")[1].split()[0])
    script_end = first(lambda e: e[3] == "sched_process_exit" and e[1] == script_pid)
    # The init's end is its thread group's: the last of its threads to exit (its stderr reader may outlive the main thread).
    spawned = {int(e[4].split("child_pid=")[1].split()[0]) for e in found if e[3] == "sched_process_fork" and e[1] == init[1]}
    threads = {init[1]} | (spawned - {e[1] for e in found if e[3] == "sched_process_exec"})
    init_end = first(lambda e: e[3] == "sched_process_exit" and e[1] in threads and "group_dead=true" in e[4])
    bwrap_end = first(lambda e: e[3] == "sched_process_exit" and e[1] == bwrap[1])
    node_end = max(e[2] for e in found if e[3] == "sched_process_exit" and e[0] == "node")
    marks = [node[2], forked[2], init[2], script[2], script_end[2], init_end[2], bwrap_end[2], node_end]
    return [b - a for a, b in zip(marks, marks[1:])] + [node_end - node[2]]


def main(argv):
    runs = int(argv[1]) if len(argv) > 1 else 7
    project = argv[2] if len(argv) > 2 else None
    work = tempfile.mkdtemp(prefix="alekseylearn-phases-")
    try:
        if project is None:
            project = os.path.join(work, "iris")
            shutil.copytree(os.path.join(REPO, "examples", "iris"), project)
        env = dict(os.environ, XDG_STATE_HOME=os.path.join(work, "state"))
        env.setdefault("XDG_CACHE_HOME", os.path.join(REPO, ".cache", "bench"))
        events(project, env)  # the environment, built or found
        rows = [phases(events(project, env)) for _ in range(runs)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("phase (median of %d runs, ms)" % runs)
    for index, name in enumerate(PHASES):
        print("  %-28s %7.1f" % (name, statistics.median(row[index] for row in rows)))


if __name__ == "__main__":
    main(sys.argv)
