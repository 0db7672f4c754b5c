"""The dataclasses that cross the workflow/activity boundary carry their annotations as
types: Temporal's data converter asks ``typing.get_type_hints`` for them on every payload,
and a string annotation would be evaluated again each time (workflows/types.py)."""

from __future__ import annotations

import dataclasses
import inspect

from core.plan import model
from workflows import types


def boundary_classes() -> list[type]:
    return [cls for module in (types, model) for _, cls in inspect.getmembers(module)
            if dataclasses.is_dataclass(cls) and cls.__module__ == module.__name__]


def test_every_field_is_annotated_with_a_type_not_a_string() -> None:
    classes = boundary_classes()
    assert {"PlanStep", "PlanInput", "StepInput", "StepResult", "PreparedJob"} <= {
        cls.__name__ for cls in classes}
    strings = [f"{cls.__name__}.{field.name}" for cls in classes
               for field in dataclasses.fields(cls) if isinstance(field.type, str)]
    assert strings == []
