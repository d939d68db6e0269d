"""Execute a notebook headless, cell by cell: `python notebook.py NOTEBOOK EXECUTED_COPY [FAILURE_FILE]`.

Each cell's output is printed as the kernel sends it, so the job's log is live; the executed copy (outputs included) is
saved even when a cell fails; a failure is written as `cell N: Type: message`, N counted from 1 over all cells as
Jupyter numbers them. Needs nbclient and ipykernel in the job's environment; nothing else of alekseylearn.
"""

import os
import re
import sys
import warnings

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def plain(text):
    """Text without the terminal colour codes IPython puts into tracebacks."""
    return ANSI.sub("", text or "")


def cell_failure(number, ename, evalue):
    """The failure reason of a notebook whose cell `number` raised."""
    reason = "cell %d: %s" % (number, plain(ename) or "Error")
    return reason + (": " + plain(evalue).strip() if plain(evalue).strip() else "")


def main(argv):
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    source, executed = argv[0], argv[1]
    failure = argv[2] if len(argv) > 2 else os.path.join(os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output"), "failure")
    # Jupyter's notice that the kernel talks over local TCP, and nbformat's about old notebooks' missing cell ids, are noise here.
    warnings.filterwarnings("ignore", message=".*[Kk]ernel is running over TCP.*")
    try:
        from nbformat.warnings import MissingIDFieldWarning

        warnings.filterwarnings("ignore", category=MissingIDFieldWarning)
    except ImportError:  # an nbformat before 5.8 has no such warning class
        pass
    notebook = nbformat.read(source, as_version=4)
    code_cells = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    error = {}

    class LiveClient(NotebookClient):
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
                error.update(cell=cell_index, ename=content.get("ename"), evalue=content.get("evalue"))
                print("\n".join(content.get("traceback", [])), file=sys.stderr, flush=True)
            return super().output(outs, msg, display_id, cell_index)

    # The kernel itself logs "Kernel is running over TCP without encryption" (a WARNING of IPKernelApp, in its own process, so the
    # filter above cannot reach it): its log level is raised to ERROR, which still shows a kernel that fails to start.
    client = LiveClient(
        notebook,
        timeout=None,
        kernel_name="python3",
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
        resources={"metadata": {"path": os.getcwd()}},
    )

    def announce(cell, cell_index, **_):
        error["cell"] = cell_index
        if cell.cell_type == "code":
            number = code_cells.index(cell_index) + 1
            print("[alekseylearn] cell %d/%d" % (number, len(code_cells)), file=sys.stderr, flush=True)

    client.on_cell_start = announce
    failed = False
    try:
        client.execute()
    except CellExecutionError as err:
        failed = True
        ename = error.get("ename") or getattr(err, "ename", None)
        reason = cell_failure(error.get("cell", 0) + 1, ename, error.get("evalue") or getattr(err, "evalue", ""))
        print("[alekseylearn] a cell failed: %s" % reason, file=sys.stderr, flush=True)
        try:
            with open(failure, "w") as handle:
                handle.write(reason + "\n")
        except OSError:
            pass
    finally:
        os.makedirs(os.path.dirname(executed) or ".", exist_ok=True)
        nbformat.write(notebook, executed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
