"""Keras optimizers with the fast-training recipe's extras, for any backend.

Keras optimizers have one learning rate for all variables and no lookahead. The
``RecipeOptimizer`` mixin adds, inside the optimizer's step (so that it runs compiled,
under every backend, and its state is saved and restored with the optimizer's):

* gradient scales per variable: BatchNorm biases learn ``batchnorm_bias_lr_scale``
  times faster (their weight decay is not scaled); the whitening stem's bias learns
  for ``whitening_bias_epochs`` epochs and then stays as it is;
* lookahead: every ``every`` steps (and at the last step of every epoch, so that the
  weights validated and checkpointed after an epoch are the averaged ones) the weights
  are averaged into slow copies and set to them.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from .architectures import WHITENING_LAYER


class RecipeOptimizer:
    """Mixin for a Keras optimizer class; see the module's docstring."""

    def __init__(
        self,
        *args: Any,
        steps_per_epoch: int = 1,
        total_steps: int = 1,
        batchnorm_bias_lr_scale: float = 1.0,
        whitening_bias_epochs: float = 0.0,
        lookahead_every: int | None = None,
        lookahead_decay: float = 0.0,
        lookahead_power: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = total_steps
        self.batchnorm_bias_lr_scale = batchnorm_bias_lr_scale
        self.whitening_bias_epochs = whitening_bias_epochs
        self.lookahead_every = lookahead_every
        self.lookahead_decay = lookahead_decay
        self.lookahead_power = lookahead_power

    def build(self, variables: list[keras.Variable]) -> None:
        super().build(variables)
        self._gradient_scales = [self._scale_of(v) for v in variables]
        self._slow = (
            [self.add_variable_from_reference(v, name="slow") for v in variables]
            if self.lookahead_every
            else []
        )

    def _scale_of(self, variable: keras.Variable) -> str | float:
        """Return 'whitening', or a constant multiplier for ``variable``'s gradient."""
        path = variable.path
        if path.endswith(f"{WHITENING_LAYER}/bias"):
            return "whitening"
        if path.endswith("/beta"):  # a BatchNormalization bias
            return self.batchnorm_bias_lr_scale
        return 1.0

    def apply(
        self, grads: list[Any], trainable_variables: list[Any] | None = None
    ) -> None:
        if not self.built:  # Keras builds on the first apply; the scales need it now
            with keras.name_scope(self.name, caller=self):
                self.build(list(trainable_variables))
        variables = self._trainable_variables
        # Read before the update step, so that it is this step's number.
        step = ops.cast(self.iterations, "float32")
        learning = step < self.whitening_bias_epochs * self.steps_per_epoch
        grads = [
            g if g is None or s in (1.0, "whitening") else g * ops.cast(s, g.dtype)
            for g, s in zip(grads, self._gradient_scales, strict=True)
        ]
        # A frozen variable keeps its value: no gradient, momentum or weight decay
        # moves it (as a PyTorch parameter without requires_grad).
        frozen = [
            (v, ops.copy(v.value))
            for v, s in zip(variables, self._gradient_scales, strict=True)
            if s == "whitening"
        ]
        first = ops.equal(step, 0)
        for slow, variable in zip(self._slow, variables, strict=False):
            # Lookahead starts from the initial weights (set here, in the compiled
            # step: at build time, under some backends, they cannot be read).
            slow.assign(ops.where(first, variable.value, slow.value))
        super().apply(grads, trainable_variables)
        for variable, before in frozen:
            variable.assign(ops.where(learning, variable.value, before))
        if self._slow:
            self._lookahead(ops.cast(self.iterations, "float32"))

    def _lookahead(self, step: Any) -> None:
        """Average the weights into the slow copies and reset them, on due steps."""
        due = ops.logical_or(
            ops.equal(ops.mod(step, self.lookahead_every), 0),
            ops.equal(ops.mod(step, self.steps_per_epoch), 0),
        )
        progress = ops.minimum(step / self.total_steps, 1.0)
        decay = self.lookahead_decay * progress**self.lookahead_power
        for slow, variable in zip(self._slow, self._trainable_variables, strict=True):
            # .value: the arrays themselves (JAX refuses variables inside jit).
            averaged = decay * slow.value + (1.0 - decay) * variable.value
            slow.assign(ops.where(due, averaged, slow.value))
            variable.assign(ops.where(due, averaged, variable.value))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps,
            "batchnorm_bias_lr_scale": self.batchnorm_bias_lr_scale,
            "whitening_bias_epochs": self.whitening_bias_epochs,
            "lookahead_every": self.lookahead_every,
            "lookahead_decay": self.lookahead_decay,
            "lookahead_power": self.lookahead_power,
        }


@keras.saving.register_keras_serializable(package="cifar10_kedro")
class RecipeSGD(RecipeOptimizer, keras.optimizers.SGD):
    """SGD with the recipe's gradient scales and lookahead."""


@keras.saving.register_keras_serializable(package="cifar10_kedro")
class RecipeAdam(RecipeOptimizer, keras.optimizers.Adam):
    """Adam with the recipe's gradient scales and lookahead."""


@keras.saving.register_keras_serializable(package="cifar10_kedro")
class RecipeAdamW(RecipeOptimizer, keras.optimizers.AdamW):
    """AdamW with the recipe's gradient scales and lookahead."""


OPTIMIZERS = {
    "sgd": (keras.optimizers.SGD, RecipeSGD),
    "adam": (keras.optimizers.Adam, RecipeAdam),
    "adamw": (keras.optimizers.AdamW, RecipeAdamW),
}


@keras.saving.register_keras_serializable(package="cifar10_kedro")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """A linear warm-up from ``initial`` to ``peak`` over ``warmup_steps``, then a
    linear decay to ``final`` at ``total_steps`` (airbench's triangular schedule)."""

    def __init__(
        self,
        peak: float,
        initial: float,
        final: float,
        warmup_steps: int,
        total_steps: int,
    ) -> None:
        self.peak, self.initial, self.final = peak, initial, final
        self.warmup_steps, self.total_steps = warmup_steps, total_steps

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        warm = self.initial + (self.peak - self.initial) * step / max(
            self.warmup_steps, 1
        )
        fraction = (step - self.warmup_steps) / max(
            self.total_steps - self.warmup_steps, 1
        )
        decay = self.peak + (self.final - self.peak) * ops.minimum(fraction, 1.0)
        return ops.where(step < self.warmup_steps, warm, decay)

    def get_config(self) -> dict[str, Any]:
        return {
            "peak": self.peak,
            "initial": self.initial,
            "final": self.final,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
        }
