"""Job templates (docs/API.md, "Templates"): a JobSpec with ``{{variables}}``, checked
when it is saved and expanded into the JobSpec that runs.

Pure: no I/O. The API stores templates and resolves ``{template, variables}`` requests
(``api/job_requests.py``); everything about placeholders is decided here.

* A string value of the spec that is exactly ``"{{name}}"`` is replaced by the variable's
  value *of its type*: a ``number`` stays a JSON number, a ``file`` is a file id, a
  ``string`` a string. ``{{name}}`` inside a longer string interpolates, and only
  ``string`` variables may do that. Keys are never substituted.
* At creation every placeholder must name a declared variable, every declared variable
  must be used, and the spec must be one that some values could make valid: it is
  validated with sample values, and what fails whatever the values (a field the
  template spells wrong, a ``number`` where a string is needed, a ``file`` variable
  anywhere but a media parameter) is refused with its path. Failures that depend on the
  values (a ``font_size`` of 1) are left to the use.
* At use, a missing, unknown or mistyped value is a 422 at ``["body", "variables",
  <name>]``, and so is any error the expanded spec has at a place a variable filled.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from core.spec import JobPriority, JobSpec, WebhookSpec, iter_media_uses

VariableType = Literal["file", "string", "number"]
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
VARIABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
TEMPLATE_NAME = re.compile(r"^[a-z0-9-]{3,64}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}$")
MAX_VARIABLES = 50
MAX_STRING_VALUE = 2000
#: Values tried for each type when a new template is checked (a template whose errors
#: persist with every one of them can never be valid).
SAMPLES: dict[str, list[Any]] = {
    "file": ["00000000-0000-4000-8000-000000000000"],
    "string": ["x", "bottom", "#FFFFFF", "1"],
    "number": [1, 0, 100, 10],
}

Loc = tuple[str | int, ...]
#: (loc, error type, message) with ``loc`` relative to the request body.
Problem = tuple[Loc, str, str]


def value_problem(var_type: str, value: Any) -> str | None:
    """Why ``value`` cannot be the value of a ``var_type`` variable, or None."""
    if var_type == "number":
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not math.isfinite(value):
            return "must be a number"
        return None
    if not isinstance(value, str):
        return "must be a file id (a string)" if var_type == "file" else "must be a string"
    if var_type == "file" and not _UUID.match(value):
        return "must be a file id (a UUID)"
    if len(value) > MAX_STRING_VALUE:
        return f"must be at most {MAX_STRING_VALUE} characters"
    return None


def _normalised(value: Any) -> Any:
    """A whole float is an integer (``48.0`` fills an integer field as 48)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _UUID.match(value):
        return value.lower()
    return value


def _variable_name(value: str) -> str:
    if not VARIABLE_NAME.match(value):
        raise PydanticCustomError(
            "variable_name", "a variable name is 1-32 of [a-z0-9_], starting with a letter")
    return value


def _template_name(value: str) -> str:
    if not TEMPLATE_NAME.match(value):
        raise PydanticCustomError("template_name", "a template name is 3-64 of [a-z0-9-]")
    if _UUID.match(value):
        raise PydanticCustomError("template_name",
                                  "a template name must not look like an id (a UUID)")
    return value


VariableName = Annotated[str, AfterValidator(_variable_name),
                         Field(json_schema_extra={"pattern": VARIABLE_NAME.pattern})]
TemplateName = Annotated[str, Field(min_length=3, max_length=64),
                         AfterValidator(_template_name),
                         Field(json_schema_extra={"pattern": TEMPLATE_NAME.pattern})]


class Variable(BaseModel):
    """One declared variable: its type, an optional default of that type, a description."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: VariableType
    default: Annotated[str, Field(max_length=MAX_STRING_VALUE)] | int | float | None = None
    description: Annotated[str, Field(max_length=500)] | None = None

    @model_validator(mode="after")
    def _default_of_its_type(self) -> Variable:
        if self.default is not None and (problem := value_problem(self.type, self.default)):
            raise PydanticCustomError("variable_default", "the default {problem}",
                                      {"problem": problem})
        return self


class TemplateIn(BaseModel):
    """The body of ``POST /templates`` and ``PUT /templates/{id}``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: TemplateName
    description: Annotated[str, Field(max_length=2000)] = ""
    spec: dict[str, Any] = Field(
        description="a JobSpec in which a string value may be exactly \"{{var}}\" (the "
                    "variable's value, of its type) or contain {{var}} (string variables)")
    variables: Annotated[dict[VariableName, Variable], Field(max_length=MAX_VARIABLES)] = \
        Field(default_factory=dict)
    public: bool = Field(False, description="a house preset everyone may run (superusers)")


class TemplateRun(BaseModel):
    """A job from a template: ``POST /jobs``, ``/jobs/validate`` and ``/jobs/batch`` items."""

    model_config = ConfigDict(extra="forbid", strict=True)

    template: Annotated[str, Field(min_length=1, max_length=64,
                                   description="the template's id, or its name (yours "
                                               "first, then a public one)")]
    variables: Annotated[dict[str, Annotated[str, Field(max_length=MAX_STRING_VALUE)] | int
                              | float], Field(max_length=MAX_VARIABLES)] = \
        Field(default_factory=dict)
    webhook: WebhookSpec | None = Field(None, description="replaces the template's")
    priority: JobPriority | None = Field(None, description="replaces the template's")


# --------------------------------------------------------------------------- placeholders


@dataclass(frozen=True)
class Use:
    """One placeholder in a template's spec: where (a JSON path), which variable, and
    whether it is the whole string (typed substitution) or inside one (interpolation)."""

    path: Loc
    name: str
    whole: bool

    def covers(self, loc: Loc) -> bool:
        return tuple(loc[:len(self.path)]) == self.path


def uses_in(node: Any, path: Loc = ()) -> Iterator[Use]:
    if isinstance(node, str):
        found = PLACEHOLDER.findall(node)
        whole = bool(found) and PLACEHOLDER.fullmatch(node) is not None
        for name in found:
            yield Use(path, name, whole)
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from uses_in(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from uses_in(value, (*path, index))


def substitute(node: Any, values: dict[str, Any]) -> Any:
    """A copy of ``node`` with every placeholder replaced by its value."""
    if isinstance(node, str):
        whole = PLACEHOLDER.fullmatch(node)
        if whole and whole[1] in values:
            return copy.deepcopy(values[whole[1]])
        return PLACEHOLDER.sub(lambda m: str(values.get(m[1], m[0])), node)
    if isinstance(node, dict):
        return {key: substitute(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [substitute(value, values) for value in node]
    return node


def _dotted(loc: Loc) -> str:
    return ".".join(map(str, loc))


# --------------------------------------------------------------------------- creation


@dataclass
class TemplateCheck:
    problems: list[Problem]
    #: (loc in the body, file id) of file ids written into the spec itself: the owner's
    #: files, checked by the API
    literal_files: list[tuple[Loc, str]]


def check_template(body: TemplateIn) -> TemplateCheck:
    """Everything wrong with a template that no values could fix (module docstring)."""
    uses = list(uses_in(body.spec))
    problems: list[Problem] = []
    for use in uses:
        declared = body.variables.get(use.name)
        if declared is None:
            problems.append((("spec", *use.path), "unknown_variable",
                             f"no variable named {use.name!r} is declared"))
        elif not use.whole and declared.type != "string":
            problems.append((("spec", *use.path), "variable_inline",
                             f"only string variables can be placed inside a string; "
                             f"{use.name!r} is a {declared.type}"))
    used = {use.name for use in uses}
    problems += [(("variables", name), "unused_variable",
                  f"variable {name!r} is declared but the spec never uses it")
                 for name in body.variables if name not in used]
    if problems:
        return TemplateCheck(problems, [])
    return _check_with_samples(body, uses)


def _check_with_samples(body: TemplateIn, uses: list[Use]) -> TemplateCheck:
    persistent: dict[tuple[Loc, str], Problem] | None = None
    rounds = max(len(samples) for samples in SAMPLES.values())
    for turn in range(rounds):
        values = {name: SAMPLES[v.type][turn % len(SAMPLES[v.type])]
                  for name, v in body.variables.items()}
        try:
            parsed = JobSpec.model_validate(substitute(body.spec, values))
        except ValidationError as exc:
            found = {(p[0], p[1]): p for p in _sample_problems(exc, uses, body.variables)}
            persistent = found if persistent is None else {
                key: problem for key, problem in persistent.items() if key in found}
            continue
        return _check_media_places(parsed, uses, body.variables)
    return TemplateCheck(list((persistent or {}).values()), [])


def _sample_problems(exc: ValidationError, uses: list[Use],
                     variables: dict[str, Variable]) -> Iterator[Problem]:
    """The errors of one sample that the values cannot explain: anywhere no placeholder
    is, or a type no value of the variable's type could have."""
    for error in exc.errors():
        loc = tuple(error["loc"])
        use = next((u for u in uses if u.covers(loc)), None)
        if use is None:
            yield ("spec", *loc), "spec_invalid", error["msg"]
        elif error["type"] == "media_ref" and variables[use.name].type != "file":
            yield (("spec", *use.path), "variable_place",
                   f"a media parameter takes a file variable; {use.name!r} is a "
                   f"{variables[use.name].type}")
        elif str(error["type"]).endswith("_type"):
            yield (("spec", *use.path), "variable_type",
                   f"variable {use.name!r} is a {variables[use.name].type} and can never "
                   f"fit here: {error['msg']}")


def _check_media_places(parsed: JobSpec, uses: list[Use],
                        variables: dict[str, Variable]) -> TemplateCheck:
    """``file`` variables fill media parameters and nothing else fills them."""
    problems: list[Problem] = []
    literal: list[tuple[Loc, str]] = []
    media = {use.loc: use for use in iter_media_uses(parsed)}
    for use in uses:
        is_file = variables[use.name].type == "file"
        if is_file and use.path not in media:
            problems.append((("spec", *use.path), "variable_place",
                             f"{use.name!r} is a file variable: it can only be a media "
                             "parameter (a file id)"))
        elif not is_file and use.path in media:
            problems.append((("spec", *use.path), "variable_place",
                             f"a media parameter takes a file variable; {use.name!r} is a "
                             f"{variables[use.name].type}"))
    filled = {use.path for use in uses}
    for loc, media_use in media.items():
        if loc not in filled and not media_use.is_step_ref:
            literal.append((("spec", *loc), media_use.value))
    return TemplateCheck(problems, literal)


# --------------------------------------------------------------------------- use


class TemplateUseError(ValueError):
    """Values that do not fit the template: ``problems`` relative to the request body."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{_dotted(loc)}: {msg}" for loc, _, msg in problems))
        self.problems = problems


@dataclass
class Expansion:
    """A template request made into the JobSpec that runs, and the way back from a place
    in that spec to the variable that filled it."""

    spec: JobSpec
    uses: list[Use]

    def relocate(self, loc: Loc, type_: str, msg: str) -> Problem:
        """An error at ``loc`` of the expanded spec, told as the request's error."""
        return relocate(self.uses, loc, type_, msg)


def relocate(uses: list[Use], loc: Loc, type_: str, msg: str) -> Problem:
    use = next((u for u in uses if u.covers(loc)), None)
    if use is not None:
        return ("variables", use.name), type_, f"{msg} (variable {use.name!r} at " \
                                               f"{_dotted(loc)})"
    return ("variables",), type_, f"with these values, {_dotted(loc)}: {msg}"


def expand(spec: dict[str, Any], variables: dict[str, Variable], run: TemplateRun
           ) -> Expansion:
    """The JobSpec ``run`` asks of the template; TemplateUseError naming the variable."""
    problems: list[Problem] = [
        (("variables", name), "unknown_variable", f"the template has no variable {name!r}")
        for name in run.variables if name not in variables]
    values: dict[str, Any] = {}
    for name, declared in variables.items():
        value = run.variables.get(name, declared.default)
        if value is None:
            problems.append((("variables", name), "missing",
                             f"the template needs a value for {name!r} ({declared.type})"))
        elif problem := value_problem(declared.type, value):
            problems.append((("variables", name), "variable_type",
                             f"{name!r} is a {declared.type} variable: it {problem}"))
        else:
            values[name] = _normalised(value)
    if problems:
        raise TemplateUseError(problems)
    uses = list(uses_in(spec))
    expanded = substitute(spec, values)
    if run.webhook is not None:
        expanded["webhook"] = run.webhook.model_dump(mode="json", exclude_none=True)
    if run.priority is not None:
        expanded["priority"] = run.priority
    try:
        return Expansion(JobSpec.model_validate(expanded), uses)
    except ValidationError as exc:
        raise TemplateUseError([relocate(uses, tuple(e["loc"]), str(e["type"]), e["msg"])
                                for e in exc.errors()]) from None
