"""The ``compare`` pipeline: every variant of conf/base/globals.yml (``variants``) trained
and reported beside the default, on the same ingested arrays, and one comparison report."""

import warnings

from kedro.pipeline import Node, Pipeline

from cifar10_kedro.pipelines import model_training, reporting
from cifar10_kedro.variants import variant_names

from .nodes import compare_variants

# What every variant reads rather than produces: the arrays, ingested once.
SHARED = ["x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "class_names"]


def create_pipeline(**kwargs) -> Pipeline:
    """Return the variants' training and reporting, and the comparison.

    The default configuration's own nodes (model_training and reporting, not
    namespaced) are added by the registry, so that the default's outputs are the
    same datasets as a plain ``kedro run``'s. Each variant's nodes read its parameters
    under its name and write its datasets under ``<name>.`` (the catalog's dataset
    factories); the names are those of conf/base (``variant_names``).
    """
    names = variant_names()
    per_variant = model_training.create_pipeline() + reporting.create_pipeline()
    variants = [
        Pipeline(per_variant, namespace=name, inputs=set(SHARED)) for name in names
    ]
    inputs = {
        "default__metrics": "test_metrics",
        "default__history": "training_history",
    }
    for name in names:
        inputs |= {
            f"{name}__metrics": f"{name}.test_metrics",
            f"{name}__history": f"{name}.training_history",
        }
    with warnings.catch_warnings():
        # Kedro warns about dotted names used outside their namespace; reading every
        # variant's namespaced results is exactly what a comparison does.
        warnings.filterwarnings("ignore", "One or more dataset names contain '.'")
        comparison = Node(
            compare_variants,
            inputs=inputs,
            outputs=["comparison", "comparison_plot"],
            name="compare_variants",
        )
    return Pipeline([*variants, comparison], tags=["compare"])
