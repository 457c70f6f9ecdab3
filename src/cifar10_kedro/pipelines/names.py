"""The node tag and dataset names that the project's hooks key on, declared once.

The pipelines use these names, so renaming a dataset or the training node here
renames it everywhere. A namespaced copy of a pipeline (the compare pipeline's
variants) prefixes them: ``notebook.trained_model`` (``namespaced``). Kept free of
Keras and TensorFlow: ``settings.py`` imports it for every ``kedro`` command.
"""

from __future__ import annotations

from kedro.pipeline import Node

# The tag of the node that trains a model (model_training's train_model).
TRAINS_MODEL = "trains_model"
# What one training writes together, with one version.
TRAINED_MODEL = "trained_model"
TRAINING_HISTORY = "training_history"
TRAINING_CONFIG = "training_config"
FIT_PARAMS = "params:model_training.fit"
# plan_training's outputs: the fit and compile groups the training uses (the
# configured ones, or with model_training.fit.time_budget_minutes the epochs that fit
# it), and the plan itself, saved with the training's version.
PLANNED_FIT = "planned_fit"
PLANNED_COMPILE = "planned_compile"
TRAINING_PLAN = "training_plan"
# The int8 ONNX export: the export pipeline writes it, inference_int8 and
# `kedro serve --engine onnx_int8` read it.
INT8_MODEL = "onnx_int8_model"


def namespaced(node: Node, name: str) -> str:
    """``name`` as ``node`` reads or writes it: with the node's namespace, if any."""
    if not node.namespace:
        return name
    if name.startswith("params:"):
        return f"params:{node.namespace}.{name.removeprefix('params:')}"
    return f"{node.namespace}.{name}"
