"""What every typed parameter group shares: strictness, immutability, readable errors.

Nodes declare their ``params:`` inputs with the models built on ``Params``; Kedro 1.x
instantiates and validates them before a run starts (``kedro.validation``), so a bad
value fails before any node runs.

One source for every value: ``conf/base/parameters_*.yml`` holds every parameter (an
option that is off is written out, e.g. ``lookahead: null``), other environments
override single keys, and the models hold types, constraints and cross-field rules
only. No field has a default, so a key missing from the configuration is an error that
names it, and no code (node, command or benchmark) falls back to a value of its own.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
UnitFloat = Annotated[float, Field(ge=0, le=1)]
OpenUnitFloat = Annotated[float, Field(gt=0, lt=1)]
Seed = Annotated[int, Field(ge=0, lt=2**32)]
NonEmptyStr = Annotated[str, Field(min_length=1)]


class InvalidParametersError(ValueError):
    """Raised before a run with every parameter problem found, one per line."""


class Params(BaseModel):
    """A group of parameters: unknown keys, coercions and mutation are refused.

    ``strict``: "5" or ``true`` is not an epoch count (an int is a valid float).
    ``frozen``: nodes are pure, so they cannot change what another node receives.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Validate ``obj``; errors list every problem by its key, without pydantic's
        tracebacks and links (Kedro adds the parameter's name in front)."""
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            raise InvalidParametersError(describe_errors(exc, cls)) from None


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """Return the keys allowed at the parent of ``loc`` in ``model``, if known."""
    current: Any = model
    for part in loc[:-1]:
        field = current.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        candidates = [field.annotation, *getattr(field.annotation, "__args__", ())]
        current = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)),
            None,
        )
        if current is None:
            return None
    return sorted(current.model_fields)


def _describe(error: dict[str, Any], model: type[BaseModel], prefix: str) -> str:
    key = prefix + ".".join(str(part) for part in error["loc"])
    key = key.rstrip(".") or "parameters"
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, error["loc"])
        expected = f"; expected one of {allowed}" if allowed else ""
        return f"{key}: unknown parameter (a typo?){expected}"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"{key}: missing; this parameter is required"
    if error["type"] == "value_error":  # our own checks say what they got
        return f"{key}: {message}"
    shown = repr(error["input"])
    if len(shown) > 80:  # noqa: PLR2004
        shown = shown[:77] + "..."
    return f"{key}: {message}; got {shown}"


def describe_errors(
    exc: ValidationError, model: type[BaseModel], prefix: str = ""
) -> str:
    """Return one line per problem of ``exc``: the dotted key, what was expected and
    what was given."""
    return "\n".join(f"  - {_describe(error, model, prefix)}" for error in exc.errors())
