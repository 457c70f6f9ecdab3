"""The project's hooks can be registered by every pluggy that Kedro accepts."""

from __future__ import annotations

import pytest

from cifar10_kedro import settings


@pytest.mark.parametrize("hook", settings.HOOKS, ids=lambda h: type(h).__name__)
def test_every_attribute_of_a_new_hook_can_be_read(hook) -> None:
    # pluggy before 1.7 reads every attribute (properties included) of a hook object
    # when Kedro registers it, before any hook has run: none may raise then.
    fresh = type(hook)()
    for name in dir(fresh):
        getattr(fresh, name)
