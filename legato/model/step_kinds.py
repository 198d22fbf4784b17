"""Step kinds: the schema of each kind's ``with`` (python, shell, http, workflow, sleep,
approval, group) and the registry that more kinds join."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from legato.model import expressions as ex
from legato.model.definition import FUNCTION_PATTERN, WORKFLOW_NAME_PATTERN, Duration

__all__ = [
    "KIND_SCHEMAS",
    "ApprovalWith",
    "GroupWith",
    "HttpWith",
    "PythonWith",
    "ShellWith",
    "SleepWith",
    "WorkflowWith",
    "parse_with",
    "register_kind",
]


class _With(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_alias=True)


def _strings(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


class PythonWith(BaseModel):
    """``python``: ``function`` is ``package.module:function``; other keys are its arguments."""

    model_config = ConfigDict(extra="allow", frozen=True)
    function: str = Field(pattern=FUNCTION_PATTERN)

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ShellWith(_With):
    """``shell``: a program and its arguments as a list (never a shell string)."""

    argv: list[Annotated[str, BeforeValidator(_strings)]] = Field(min_length=1)
    env: dict[str, Annotated[str, BeforeValidator(_strings)]] = Field(default_factory=dict)
    cwd: str | None = None
    #: How long a canceled or timed-out process gets between SIGTERM and SIGKILL.
    kill_grace: Duration | None = None

    @field_validator("argv", mode="before")
    @classmethod
    def _no_shell_string(cls, value: Any) -> Any:
        if isinstance(value, str) and not ex.contains_expression(value):
            raise PydanticCustomError(
                "invalid", "argv must be a list of strings such as [echo, hello], not a string"
            )
        return value


class HttpWith(_With):
    """``http``: one request with httpx."""

    url: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    json_: Any = Field(None, alias="json")
    body: str | None = None
    timeout: Duration | None = None
    #: follow redirects (each hop's destination is checked like the first)
    follow_redirects: bool = False

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class WorkflowWith(_With):
    """``workflow``: start a child run of another workflow and wait for it."""

    workflow: str = Field(pattern=WORKFLOW_NAME_PATTERN)
    version: int | None = Field(None, ge=1)
    inputs: dict[str, Any] = Field(default_factory=dict)


class SleepWith(_With):
    duration: Duration


class ApprovalWith(_With):
    message: str = ""


class GroupWith(_With):
    """``group``: no ``with``; its ``steps`` run as one step of the level around it."""


KIND_SCHEMAS: dict[str, type[BaseModel]] = {
    "python": PythonWith,
    "shell": ShellWith,
    "http": HttpWith,
    "workflow": WorkflowWith,
    "sleep": SleepWith,
    "approval": ApprovalWith,
    "group": GroupWith,
}


def register_kind(name: str, with_model: type[BaseModel]) -> None:
    """Make step kind ``name`` known, its ``with`` validated by ``with_model``."""
    if not name or not name.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise ValueError(f"invalid step kind name {name!r}")
    known = KIND_SCHEMAS.get(name)
    if known is not None and known is not with_model:
        raise ValueError(f"step kind {name!r} is already registered")
    KIND_SCHEMAS[name] = with_model


def parse_with(kind: str, data: Mapping[str, Any]) -> BaseModel:
    """Validate a step's rendered ``with`` against its kind (``KeyError`` for unknown kinds)."""
    return KIND_SCHEMAS[kind].model_validate(dict(data))
