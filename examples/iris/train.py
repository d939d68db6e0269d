"""Train a small classifier on the iris data set (shipped inside scikit-learn, so no download).

It follows the alekseylearn contract, which is SageMaker's: the model goes to
/opt/ml/model ($SM_MODEL_DIR), hyperparameters come from $SM_HPS. The same file
runs unchanged on every backend.
"""
import json
import os

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

model_dir = os.environ.get("SM_MODEL_DIR", "/opt/ml/model")
hyperparameters = json.loads(os.environ.get("SM_HPS", "{}"))
c = float(hyperparameters.get("C", 1.0))
max_iter = int(hyperparameters.get("max_iter", 200))

features, labels = load_iris(return_X_y=True)
train_x, test_x, train_y, test_y = train_test_split(features, labels, test_size=0.25, random_state=0)
print(f"training on {len(train_x)} samples with C={c}, max_iter={max_iter}")

model = LogisticRegression(C=c, max_iter=max_iter).fit(train_x, train_y)
accuracy = model.score(test_x, test_y)
print(f"test accuracy: {accuracy:.3f}")

os.makedirs(model_dir, exist_ok=True)
joblib.dump(model, os.path.join(model_dir, "model.joblib"))
with open(os.path.join(model_dir, "metrics.json"), "w") as handle:
    json.dump({"accuracy": accuracy}, handle)
print(f"saved model.joblib to {model_dir}")
