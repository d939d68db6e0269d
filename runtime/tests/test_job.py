"""The job's init, unit by unit: its failure reason (what SageMaker shows as FailureReason is /opt/ml/output/failure's
text: docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-output.html), how its platform is found, and how
its description is read."""

from alekseylearn_runtime import job as jobs
from alekseylearn_runtime import platforms

TRACEBACK = [
    "Traceback (most recent call last):",
    '  File "train.py", line 1, in <module>',
    "    import xgboost",
    "ModuleNotFoundError: No module named 'xgboost'",
]


def test_the_failure_reason_is_the_tracebacks_last_line():
    assert jobs.failure_reason(["loading data", *TRACEBACK], 1) == "ModuleNotFoundError: No module named 'xgboost'"


def test_the_failure_reason_has_no_terminal_colour_codes():
    tail = [*TRACEBACK[:-1], "\x1b[0;31mModuleNotFoundError\x1b[0m: No module named 'xgboost'\x1b[0m"]
    assert jobs.failure_reason(tail, 1) == "ModuleNotFoundError: No module named 'xgboost'"


def test_the_failure_reason_is_the_last_traceback_of_a_chain():
    chained = [
        *TRACEBACK,
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "Traceback (most recent call last):",
        '  File "train.py", line 3, in <module>',
        '    raise RuntimeError("install xgboost")',
        "RuntimeError: install xgboost",
    ]
    assert jobs.failure_reason(chained, 1) == "RuntimeError: install xgboost"


def test_the_failure_reason_ignores_what_follows_the_traceback_indented():
    # A multi-line exception message's continuation is indented; the closing line is the last unindented one.
    tail = [*TRACEBACK, "  (hint: pip install xgboost)"]
    assert jobs.failure_reason(tail, 1) == "ModuleNotFoundError: No module named 'xgboost'"


def test_the_failure_reason_is_the_last_line_printed_without_a_traceback():
    assert jobs.failure_reason(["epoch 1", "CUDA out of memory", "", "   "], 1) == "CUDA out of memory"


def test_the_failure_reason_is_the_exit_code_when_nothing_was_printed():
    assert jobs.failure_reason([], 3) == "the training process exited with code 3"
    assert jobs.failure_reason(["", "\x1b[0m"], 137) == "the training process exited with code 137"


def test_alekseylearn_platform_names_the_platform_whatever_else_is_set():
    assert platforms.detect({"ALEKSEYLEARN_PLATFORM": "local", "CLOUD_ML_JOB_ID": "1", "KAGGLE_KERNEL_RUN_TYPE": "Batch"}) == "local"


def test_vertex_is_found_by_the_variables_it_sets_in_every_custom_job():
    # cloud.google.com/vertex-ai/docs/training/code-requirements: CLOUD_ML_JOB_ID; distributed-training: CLUSTER_SPEC.
    assert platforms.detect({"CLOUD_ML_JOB_ID": "123"}) == "vertex"
    assert platforms.detect({"CLUSTER_SPEC": "{}"}) == "vertex"
    # alekseylearn's Vertex jobs carry their output prefix.
    assert platforms.detect({"ALEKSEYLEARN_OUTPUT_DIR": "/gcs/b/j/output"}) == "vertex"


def test_kaggle_is_found_by_kaggle_kernel_run_type():
    # github:Kaggle/docker-python: the kernel's environment has KAGGLE_KERNEL_RUN_TYPE (Interactive or Batch).
    assert platforms.detect({"KAGGLE_KERNEL_RUN_TYPE": "Batch"}) == "kaggle"


def test_anything_else_is_sagemaker():
    assert platforms.detect({}) == "sagemaker"
    assert platforms.detect({"PATH": "/usr/bin"}) == "sagemaker"


def test_the_job_reads_its_hyperparameters_as_typed_from_the_arguments_after_train():
    job = jobs.Job({"ALEKSEYLEARN_ENTRY": "train.py"}, ["--lr", "0.10", "--epochs", "3"])
    assert job.hyperparameters == {"lr": "0.10", "epochs": "3"}
    assert job.entry == "train.py"
    assert job.kind == "script"
    assert job.name == "job"
    assert job.hyperparameter_format == "toolkit"
    assert job.hyperparameter_args is True


def test_the_job_reads_its_settings_from_alekseylearn_variables():
    job = jobs.Job(
        {
            "ALEKSEYLEARN_KIND": "notebook",
            "TRAINING_JOB_NAME": "j",
            "ALEKSEYLEARN_INPUTS": '{"train": "/data"}',
            "ALEKSEYLEARN_HYPERPARAMETER_ARGS": "false",
            "ALEKSEYLEARN_HYPERPARAMETER_FORMAT": "json",
            "ALEKSEYLEARN_SANDBOXED": "1",
            "ALEKSEYLEARN_STOP_TIMEOUT": "30",
        }
    )
    assert job.kind == "notebook"
    assert job.name == "j"
    assert job.channels == {"train": "/data"}
    assert job.hyperparameter_args is False
    assert job.hyperparameter_format == "json"
    assert job.sandboxed is True
    assert job.stop_timeout == 30.0
