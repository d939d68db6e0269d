/**
 * Running a notebook headless, cell by cell, the same way on every backend:
 * a small Python program (written next to the job, or into an image) that
 * executes it with nbclient, prints each cell's output as it arrives, and
 * saves the executed notebook (outputs included) even when a cell fails.
 */

/** Packages the notebook runner needs in the job's environment. */
export const NOTEBOOK_PACKAGES = ["nbclient", "ipykernel"] as const;

/** File name of the runner when it is written beside a job. */
export const NOTEBOOK_RUNNER_NAME = "alekseylearn_run_notebook.py";

/** The runner: `python RUNNER NOTEBOOK EXECUTED_COPY`; exits 1 when a cell fails. */
export const NOTEBOOK_RUNNER = String.raw`"""Execute a notebook headless, cell by cell; written by alekseylearn."""
import os
import sys

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


class LiveClient(NotebookClient):
    """Prints each cell's output as the kernel sends it, so the job's log is live."""

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        kind = msg.get("msg_type")
        if kind == "stream":
            stream = sys.stderr if content.get("name") == "stderr" else sys.stdout
            stream.write(content.get("text", ""))
            stream.flush()
        elif kind in ("execute_result", "display_data"):
            text = content.get("data", {}).get("text/plain")
            if text:
                print(text, flush=True)
        elif kind == "error":
            print("\n".join(content.get("traceback", [])), file=sys.stderr, flush=True)
        return super().output(outs, msg, display_id, cell_index)


def main():
    source, executed = sys.argv[1], sys.argv[2]
    notebook = nbformat.read(source, as_version=4)
    code_cells = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    client = LiveClient(notebook, timeout=None, kernel_name="python3", resources={"metadata": {"path": os.getcwd()}})

    def announce(cell, cell_index, **_):
        if cell.cell_type == "code":
            number = code_cells.index(cell_index) + 1
            print(f"[alekseylearn] cell {number}/{len(code_cells)}", file=sys.stderr, flush=True)

    client.on_cell_start = announce
    failed = False
    try:
        client.execute()
    except CellExecutionError as err:
        failed = True
        name = getattr(err, "ename", "Error")
        value = getattr(err, "evalue", "")
        print(f"[alekseylearn] a cell failed: {name}: {value}", file=sys.stderr, flush=True)
        failure = os.path.join(os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output"), "failure")
        try:
            with open(failure, "w") as handle:
                handle.write(f"Notebook cell failed: {name}: {value}\n")
        except OSError:
            pass
    finally:
        os.makedirs(os.path.dirname(executed) or ".", exist_ok=True)
        nbformat.write(notebook, executed)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
`;
