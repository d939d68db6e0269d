"""SageMaker's training toolkit in miniature: from the files under /opt/ml/input/config to the SM_* variables and the
command-line arguments a script gets, exactly as github:aws/sagemaker-training-toolkit computes them
(src/sagemaker_training/environment.py, mapping.py, ENVIRONMENT_VARIABLES.md), or as the SageMaker Python SDK v3
ModelTrainer's drivers pass the arguments (sagemaker-python-sdk, container_drivers/common/utils.py)."""

import os

# jsontext, not json: json's import (re, enum, functools, collections) would cost every job's start-up; same text, same values.
from . import jsontext

# The hyperparameters the toolkit keeps for itself (params.SAGEMAKER_HYPERPARAMETERS and the sagemaker_ prefix).
SAGEMAKER_PREFIX = "sagemaker_"
SAGEMAKER_HYPERPARAMETERS = (
    "sagemaker_program",
    "sagemaker_submit_directory",
    "sagemaker_enable_cloudwatch_metrics",
    "sagemaker_region",
    "sagemaker_container_log_level",
    "sagemaker_job_name",
    "default_user_module_name",
    "_tuning_objective_metric",
    "sagemaker_s3_output",
)

#: How hyperparameters become a script's arguments: the classic toolkit's `to_cmd_args`, or SDK v3's `hyperparameters_to_cli_args`.
FORMATS = ("toolkit", "json")


def read_json(path, default):
    try:
        with open(path) as handle:
            return jsontext.loads(handle.read())
    except (OSError, ValueError):
        return default


def decode_hyperparameters(raw):
    """environment.read_hyperparameters: each value json.loads'ed, or kept as the string it is."""
    decoded = {}
    for key, value in raw.items():
        try:
            decoded[key] = jsontext.loads(value)
        except (TypeError, ValueError):
            decoded[key] = value
    return decoded


def to_cmd_args(mapping):
    """mapping.to_cmd_args: sorted by name, --KEY VALUE (-K for one character), a mapping as k=v,k2=v2, values as str()."""
    args = []
    for key in sorted(mapping.keys()):
        name = str(key)
        value = mapping[key]
        if hasattr(value, "items"):
            value = ",".join("%s=%s" % (k, v) for k, v in sorted(value.items()))
        else:
            value = "" if value is None else str(value)
        args += ["--%s" % name if len(name) > 1 else "-%s" % name, value] if name else ["", value]
    return args


def safe_serialize(value):
    """SDK v3's safe_serialize: a string as it is, anything else as json.dumps gives it (str() when JSON cannot say it)."""
    if isinstance(value, str):
        return value
    try:
        return jsontext.dumps(value)
    except TypeError:
        return str(value)


def to_json_args(mapping):
    """SDK v3's hyperparameters_to_cli_args: --KEY and the value decoded with json.loads where it parses, then serialized
    by safe_serialize (`true`, `0.1`, `{"a": 1}`), in the hyperparameters' own order."""
    args = []
    for key, value in mapping.items():
        args += ["--%s" % key, safe_serialize(value)]
    return args


def script_args(user, form):
    """The arguments a script gets for its (decoded) hyperparameters, in the form asked for."""
    return to_json_args(user) if form == "json" else to_cmd_args(user)


def to_env_vars(mapping):
    """mapping.to_env_vars: SM_ and the upper-cased key; text as it is, None as "", anything else compact sorted JSON."""

    def value_of(value):
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        return jsontext.dumps(value, sort_keys=True, separators=(",", ":"))

    return {("SM_%s" % str(key).upper()) if key else "": value_of(value) for key, value in mapping.items()}


#: What an earlier SM_HP_/SM_CHANNEL_ name keeps of a name's characters (the rest become "_").
LEGACY_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def legacy_name(name):
    """re.sub(r"[^A-Z0-9_]", "_", name.upper()) without re, whose import would cost every job's start-up."""
    return "".join(c if c in LEGACY_CHARACTERS else "_" for c in name.upper())


def num_gpus():
    """The GPUs nvidia-smi lists (the toolkit asks it too); 0 without one."""
    # PATH is searched here rather than with shutil.which: shutil's import (bz2, lzma) would cost every job's start-up.
    found = [d for d in os.environ.get("PATH", os.defpath).split(os.pathsep) if os.access(os.path.join(d or ".", "nvidia-smi"), os.X_OK)]
    if not found:
        return 0
    import subprocess

    try:
        out = subprocess.run(["nvidia-smi", "--list-gpus"], stdout=subprocess.PIPE, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.split("\n") if line.startswith("GPU "))


def training_environment(base, code_dir, entry, job_name=None, form="toolkit"):
    """The toolkit's Environment for the job under base (/opt/ml): (SM_* variables, the script's arguments)."""
    config = os.path.join(base, "input", "config")
    hyperparameters = decode_hyperparameters(read_json(os.path.join(config, "hyperparameters.json"), {}))
    resource_config = read_json(os.path.join(config, "resourceconfig.json"), {"current_host": "algo-1", "hosts": ["algo-1"]})
    input_data_config = read_json(os.path.join(config, "inputdataconfig.json"), {})
    framework = {k: v for k, v in hyperparameters.items() if k in SAGEMAKER_HYPERPARAMETERS or k.startswith(SAGEMAKER_PREFIX)}
    user = {k: v for k, v in hyperparameters.items() if k not in framework}
    additional = {k: v for k, v in framework.items() if k not in SAGEMAKER_HYPERPARAMETERS}
    hosts = resource_config.get("hosts", ["algo-1"])
    current_host = resource_config.get("current_host", hosts[0])
    instance_type = resource_config.get("current_instance_type", "local")
    group = resource_config.get("current_group_name", "homogeneousCluster")
    groups = resource_config.get("instance_groups", [{"instance_group_name": group, "instance_type": instance_type, "hosts": hosts}])
    groups_dict = {g["instance_group_name"]: g for g in groups}
    group_hosts = groups_dict.get(group, {}).get("hosts", hosts)
    model_dir = os.path.join(base, "model")
    input_dir = os.path.join(base, "input")
    output_dir = os.path.join(base, "output")
    channels = {channel: os.path.join(input_dir, "data", channel) for channel in input_data_config}
    module_name = entry[:-3] if entry.endswith(".py") else entry
    args = script_args(user, form)
    log_level = framework.get("sagemaker_container_log_level", 20)
    training_env = {
        "additional_framework_parameters": additional,
        "channel_input_dirs": channels,
        "current_host": current_host,
        "current_instance_group": group,
        "current_instance_group_hosts": group_hosts,
        "current_instance_type": instance_type,
        "distribution_hosts": [],
        "distribution_instance_groups": [],
        "framework_module": None,
        "hosts": hosts,
        "hyperparameters": user,
        "input_config_dir": config,
        "input_data_config": input_data_config,
        "input_dir": input_dir,
        "instance_groups": [g["instance_group_name"] for g in groups],
        "instance_groups_dict": groups_dict,
        "is_hetero": len(groups) > 1,
        "is_master": current_host == sorted(group_hosts)[0],
        "is_modelparallel_enabled": None,
        "is_smddpmprun_installed": False,
        "is_smddprun_installed": False,
        "job_name": job_name,
        "log_level": log_level,
        "master_hostname": sorted(group_hosts)[0],
        "model_dir": model_dir,
        "module_dir": code_dir,
        "module_name": module_name,
        "network_interface_name": resource_config.get("network_interface_name", "eth0"),
        "num_cpus": os.cpu_count() or 1,
        "num_gpus": num_gpus(),
        "num_neurons": 0,
        "output_data_dir": os.path.join(output_dir, "data"),
        "output_dir": output_dir,
        "output_intermediate_dir": os.path.join(output_dir, "intermediate"),
        "resource_config": resource_config,
        "user_entry_point": entry,
    }
    # Environment.to_env_vars, key for key.
    env = {
        "hosts": hosts,
        "network_interface_name": training_env["network_interface_name"],
        "hps": user,
        "user_entry_point": entry,
        "framework_params": additional,
        "resource_config": resource_config,
        "input_data_config": input_data_config,
        "output_data_dir": training_env["output_data_dir"],
        "channels": sorted(channels.keys()),
        "current_host": current_host,
        "current_instance_type": instance_type,
        "current_instance_group": group,
        "current_instance_group_hosts": group_hosts,
        "instance_groups": training_env["instance_groups"],
        "instance_groups_dict": groups_dict,
        "distribution_instance_groups": [],
        "is_hetero": training_env["is_hetero"],
        "module_name": module_name,
        "log_level": log_level,
        "framework_module": None,
        "input_dir": input_dir,
        "input_config_dir": config,
        "output_dir": output_dir,
        "num_cpus": training_env["num_cpus"],
        "num_gpus": training_env["num_gpus"],
        "num_neurons": 0,
        "model_dir": model_dir,
        "module_dir": code_dir,
        "training_env": training_env,
        "user_args": args,
        "output_intermediate_dir": training_env["output_intermediate_dir"],
    }
    for name, path in channels.items():
        env["channel_%s" % name] = path
    for key, value in user.items():
        env["hp_%s" % key] = value
    variables = to_env_vars(env)
    # alekseylearn's earlier names (SM_HP_LEARNING_RATE for learning-rate) stay, beside the toolkit's own.
    for prefix, names in (("SM_CHANNEL_", channels.keys()), ("SM_HP_", user.keys())):
        for name in names:
            legacy = prefix + legacy_name(name)
            variables.setdefault(legacy, variables[prefix + name.upper()])
    return variables, args
