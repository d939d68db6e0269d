"""The script-mode contract, checked against SageMaker's training toolkit (github:aws/sagemaker-training-toolkit,
src/sagemaker_training/mapping.py `to_cmd_args`/`to_env_vars`, environment.py `read_hyperparameters` and
`Environment.to_env_vars`, ENVIRONMENT_VARIABLES.md) and the SageMaker Python SDK v3 (github:aws/sagemaker-python-sdk,
container_drivers/common/utils.py `hyperparameters_to_cli_args` + `safe_serialize`). The expected forms are what those
functions return for the same input (the toolkit's were run by hand; neither is installable here)."""

import json

from alekseylearn_runtime import contract, toolkit
from alekseylearn_runtime.contract import Host

#: Hyperparameters as SageMaker writes them to hyperparameters.json: strings, as typed.
TYPED = {
    "learning-rate": "0.10",
    "min_samples_leaf": "3",
    "n": "5",
    "flag": "true",
    "layers": "[1,2]",
    "opt": "adam",
    "big": "12345678901234567890",
    "zero": "007",
    "mapping": '{"b": 2, "a": "x"}',
    "f": "1e5",
}


def write_config(root, hyperparameters, channels):
    files = contract.config_files(hyperparameters, channels, [Host("algo-1", "127.0.0.1")], 0, "local")
    contract.write_config(str(root), files)
    return files


def test_hyperparameters_are_decoded_as_the_toolkit_reads_them():
    # environment.read_hyperparameters: json.loads of each value, the string itself where that fails.
    decoded = toolkit.decode_hyperparameters(TYPED)
    assert decoded["learning-rate"] == 0.1
    assert decoded["flag"] is True
    assert decoded["layers"] == [1, 2]
    assert decoded["opt"] == "adam"
    assert decoded["zero"] == "007"
    assert decoded["big"] == 12345678901234567890
    assert decoded["mapping"] == {"b": 2, "a": "x"}


def test_arguments_are_formed_as_the_toolkits_to_cmd_args_forms_them():
    # mapping.to_cmd_args: sorted by name; -K for a one-character name; each decoded value str()'d (0.10 → 0.1, true → True,
    # [1,2] → [1, 2]); a mapping as k=v pairs sorted by key; text that is not JSON (007, adam) as it is; big integers exact.
    assert toolkit.to_cmd_args(toolkit.decode_hyperparameters(TYPED)) == [
        "--big",
        "12345678901234567890",
        "-f",
        "100000.0",
        "--flag",
        "True",
        "--layers",
        "[1, 2]",
        "--learning-rate",
        "0.1",
        "--mapping",
        "a=x,b=2",
        "--min_samples_leaf",
        "3",
        "-n",
        "5",
        "--opt",
        "adam",
        "--zero",
        "007",
    ]


def test_sm_hp_variables_are_named_and_formed_as_the_toolkits_to_env_vars_does():
    # mapping.to_env_vars: SM_ + the key upper-cased as it is (learning-rate → SM_HP_LEARNING-RATE); text as it is;
    # anything else compact JSON with sorted keys.
    decoded = toolkit.decode_hyperparameters(TYPED)
    mapping = {"hp_%s" % key: value for key, value in decoded.items()}
    mapping["hps"] = decoded
    env = toolkit.to_env_vars(mapping)
    assert env["SM_HP_LEARNING-RATE"] == "0.1"
    assert env["SM_HP_MIN_SAMPLES_LEAF"] == "3"
    assert env["SM_HP_N"] == "5"
    assert env["SM_HP_FLAG"] == "true"
    assert env["SM_HP_LAYERS"] == "[1,2]"
    assert env["SM_HP_OPT"] == "adam"
    assert env["SM_HP_ZERO"] == "007"
    assert env["SM_HP_MAPPING"] == '{"a":"x","b":2}'
    assert env["SM_HP_F"] == "100000.0"
    assert env["SM_HPS"] == (
        '{"big":12345678901234567890,"f":100000.0,"flag":true,"layers":[1,2],"learning-rate":0.1,'
        '"mapping":{"a":"x","b":2},"min_samples_leaf":3,"n":5,"opt":"adam","zero":"007"}'
    )


def test_to_env_vars_gives_none_as_an_empty_string():
    # mapping.to_env_vars: None → "".
    assert toolkit.to_env_vars({"framework_module": None}) == {"SM_FRAMEWORK_MODULE": ""}


def test_json_format_gives_sdk_v3_arguments_in_the_hyperparameters_order():
    # SDK v3 hyperparameters_to_cli_args: safe_deserialize, then safe_serialize (a string as it is, else json.dumps),
    # iterating the hyperparameters dict as it is (no sorting, no -K short form).
    assert toolkit.to_json_args(toolkit.decode_hyperparameters(TYPED)) == [
        "--learning-rate",
        "0.1",
        "--min_samples_leaf",
        "3",
        "--n",
        "5",
        "--flag",
        "true",
        "--layers",
        "[1, 2]",
        "--opt",
        "adam",
        "--big",
        "12345678901234567890",
        "--zero",
        "007",
        "--mapping",
        '{"b": 2, "a": "x"}',
        "--f",
        "100000.0",
    ]


def test_json_format_through_training_environment_keeps_hyperparameters_json_order(tmp_path):
    write_config(tmp_path, {"lr": "0.1", "flag": "true", "d": '{"a": 1}', "name": "resnet"}, [])
    env, args = toolkit.training_environment(str(tmp_path), "/opt/ml/code", "train.py", "j", "json")
    assert args == ["--lr", "0.1", "--flag", "true", "--d", '{"a": 1}', "--name", "resnet"]
    assert json.loads(env["SM_USER_ARGS"]) == args


def test_training_environment_sets_every_sm_variable_of_the_toolkits_environment(tmp_path):
    # environment.Environment.to_env_vars and ENVIRONMENT_VARIABLES.md, key for key.
    root = str(tmp_path)
    files = write_config(tmp_path, {"min-samples-leaf": "3", "sagemaker_program": "train.py", "lr": "0.1"}, ["train", "test-set"])
    env, args = toolkit.training_environment(root, "/opt/ml/code", "src/train.py", "job-1")
    assert args == ["--lr", "0.1", "--min-samples-leaf", "3"], "sagemaker_* hyperparameters are the toolkit's own, not the script's"
    assert json.loads(env["SM_USER_ARGS"]) == args
    assert env["SM_HP_MIN-SAMPLES-LEAF"] == "3", "the toolkit's name"
    assert env["SM_HP_MIN_SAMPLES_LEAF"] == "3", "alekseylearn's earlier name stays"
    assert "SM_HP_SAGEMAKER_PROGRAM" not in env
    assert env["SM_FRAMEWORK_PARAMS"] == "{}"
    assert json.loads(env["SM_HPS"]) == {"lr": 0.1, "min-samples-leaf": 3}
    assert env["SM_MODEL_DIR"] == root + "/model"
    assert env["SM_INPUT_DIR"] == root + "/input"
    assert env["SM_INPUT_CONFIG_DIR"] == root + "/input/config"
    assert env["SM_OUTPUT_DIR"] == root + "/output"
    assert env["SM_OUTPUT_DATA_DIR"] == root + "/output/data"
    assert env["SM_OUTPUT_INTERMEDIATE_DIR"] == root + "/output/intermediate"
    assert env["SM_CHANNEL_TRAIN"] == root + "/input/data/train"
    assert env["SM_CHANNEL_TEST-SET"] == root + "/input/data/test-set"
    assert env["SM_CHANNEL_TEST_SET"] == root + "/input/data/test-set"
    assert env["SM_CHANNELS"] == '["test-set","train"]'
    assert env["SM_CURRENT_HOST"] == "algo-1"
    assert env["SM_HOSTS"] == '["algo-1"]'
    assert env["SM_CURRENT_INSTANCE_TYPE"] == "local"
    assert env["SM_CURRENT_INSTANCE_GROUP"] == "homogeneousCluster"
    assert env["SM_CURRENT_INSTANCE_GROUP_HOSTS"] == '["algo-1"]'
    assert env["SM_INSTANCE_GROUPS"] == '["homogeneousCluster"]'
    assert env["SM_IS_HETERO"] == "false"
    assert env["SM_NETWORK_INTERFACE_NAME"] == "eth0"
    assert env["SM_LOG_LEVEL"] == "20"
    assert env["SM_USER_ENTRY_POINT"] == "src/train.py"
    assert env["SM_MODULE_NAME"] == "src/train"
    assert env["SM_MODULE_DIR"] == "/opt/ml/code"
    assert env["SM_FRAMEWORK_MODULE"] == ""
    assert env["SM_NUM_NEURONS"] == "0"
    assert int(env["SM_NUM_CPUS"]) >= 1
    assert int(env["SM_NUM_GPUS"]) >= 0
    assert json.loads(env["SM_RESOURCE_CONFIG"]) == files["resourceconfig.json"]
    assert json.loads(env["SM_INPUT_DATA_CONFIG"]) == files["inputdataconfig.json"]
    training = json.loads(env["SM_TRAINING_ENV"])
    assert training["job_name"] == "job-1"
    assert training["module_dir"] == "/opt/ml/code"
    assert training["hyperparameters"] == {"lr": 0.1, "min-samples-leaf": 3}
    assert training["channel_input_dirs"] == {"train": root + "/input/data/train", "test-set": root + "/input/data/test-set"}
    assert training["is_master"] is True
    assert training["master_hostname"] == "algo-1"
    for key in env:
        assert key.startswith("SM_") and key[3:].replace("_", "").replace("-", "").isalnum(), key


def test_config_files_are_written_as_sagemaker_writes_them():
    # docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html: hyperparameters.json
    # (strings), resourceconfig.json, inputdataconfig.json for a File-mode job.
    files = contract.config_files({"epochs": "3"}, ["train"], [Host("algo-1", "127.0.0.1")], 0, "local")
    assert files["hyperparameters.json"] == {"epochs": "3"}
    assert files["resourceconfig.json"] == {
        "current_host": "algo-1",
        "current_instance_type": "local",
        "current_group_name": "homogeneousCluster",
        "hosts": ["algo-1"],
        "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": "local", "hosts": ["algo-1"]}],
        "network_interface_name": "eth0",
    }
    assert files["inputdataconfig.json"] == {
        "train": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
    }


def test_without_config_files_the_job_is_one_host_named_algo_1(tmp_path):
    # environment.py: resourceconfig.json absent (a local run) → current_host algo-1, hosts [algo-1].
    env, args = toolkit.training_environment(str(tmp_path), "/code", "train.py")
    assert env["SM_CURRENT_HOST"] == "algo-1"
    assert env["SM_HOSTS"] == '["algo-1"]'
    assert env["SM_CHANNELS"] == "[]"
    assert args == []
