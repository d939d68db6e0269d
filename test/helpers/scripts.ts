/**
 * Training scripts written the way users write them, for tests that run them
 * unchanged on every backend.
 */

/**
 * A script as SageMaker's script-mode examples write it (the scikit-learn and
 * PyTorch examples of github:aws/amazon-sagemaker-examples): hyperparameters
 * through argparse with defaults, strictly parsed (an unknown argument is an
 * error), the model folder and the train channel from SM_MODEL_DIR and
 * SM_CHANNEL_TRAIN. It writes what it was given to `seen.json` in the model,
 * so a test reads it back from the fetched model.
 */
export const ARGPARSE_SCRIPT = `import argparse
import json
import os
import sys

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--min_samples_leaf", type=int, default=1)
    parser.add_argument("-e", "--epochs", type=int, default=1)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--model-dir", type=str, default=os.environ["SM_MODEL_DIR"])
    parser.add_argument("--train", type=str, default=os.environ.get("SM_CHANNEL_TRAIN"))
    args = parser.parse_args()
    print("training with", json.dumps(vars(args), sort_keys=True), flush=True)
    sm = {key: value for key, value in os.environ.items() if key.startswith("SM_")}
    with open(os.path.join(args.model_dir, "seen.json"), "w") as handle:
        json.dump({"args": vars(args), "argv": sys.argv[1:], "env": sm}, handle)
`;

/** Hyperparameters for ARGPARSE_SCRIPT: names with -, with _, and of one character, as typed on the command line. */
export const ARGPARSE_HYPERPARAMETERS = [
  "--hyperparameter.n-estimators=7",
  "--hyperparameter.min_samples_leaf=3",
  "--hyperparameter.e=5",
  "--hyperparameter.learning-rate=0.10",
];

/** What ARGPARSE_SCRIPT must have seen for ARGPARSE_HYPERPARAMETERS (the model folder and channel are added by each test). */
export const ARGPARSE_EXPECTED = { n_estimators: 7, min_samples_leaf: 3, epochs: 5, learning_rate: 0.1 };

/** The arguments SageMaker's toolkit forms for ARGPARSE_HYPERPARAMETERS: sorted by name, -e for the one-character name, 0.10 decoded as 0.1. */
export const ARGPARSE_ARGV = ["-e", "5", "--learning-rate", "0.1", "--min_samples_leaf", "3", "--n-estimators", "7"];
