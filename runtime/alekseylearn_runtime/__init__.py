"""The code that runs inside every alekseylearn job: the job's init, SageMaker's training toolkit in miniature,
and one adapter per platform, so that a training file written for any platform runs unchanged on all of them.

Standard library only, Python 3.8+. alekseylearn copies these files into images, sandboxes and Kaggle kernels.
"""
