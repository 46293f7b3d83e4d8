"""Kubeflow Pipelines, driven from the core environment through ``.venvs/kubeflow`` subprocesses."""
