"""Which Python functions ``uses: python`` steps may call.

The installation decides: a namespace may call functions of the modules the installation
trusts (registered step modules, the installation-wide list, the namespace's own list, all as
module prefixes). Modules that reach the operating system, the interpreter or the network are
never allowed, whatever the lists say, and neither is Legato itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from legato.model.definition import StepDefinition

__all__ = [
    "MODULE_PATTERN",
    "NEVER_MODULES",
    "ModulePolicy",
    "module_refusal",
    "never_allowed",
    "python_functions",
]

MODULE_PATTERN = r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$"
_MODULE = re.compile(MODULE_PATTERN)

#: Top-level modules no step may call into: processes, files, the interpreter, code loading,
#: native code, deserialisation, the network (outbound requests go through ``uses: http``,
#: which is guarded) and the packages that hold the installation's own connections.
NEVER_MODULES = frozenset(
    {
        # processes, files and the environment
        "os", "posix", "nt", "posixpath", "ntpath", "genericpath", "subprocess", "pty", "signal",
        "shutil", "pathlib", "tempfile", "glob", "fileinput", "io", "fcntl", "mmap", "resource",
        "pwd", "grp", "getpass", "platform", "multiprocessing", "concurrent", "threading",
        "asyncio", "tarfile", "zipfile", "shelve", "dbm", "sqlite3", "logging", "atexit",
        # the interpreter and code loading
        "builtins", "sys", "importlib", "runpy", "pkgutil", "zipimport", "site", "sysconfig",
        "code", "codeop", "pdb", "bdb", "inspect", "gc", "types", "ctypes", "cffi",
        "faulthandler", "trace", "tracemalloc", "ensurepip", "venv", "pip", "setuptools",
        "distutils",
        # deserialisation of code
        "pickle", "marshal", "copyreg", "dill", "cloudpickle", "joblib", "yaml",
        "jinja2",
        # the network
        "socket", "socketserver", "ssl", "select", "selectors", "http", "urllib", "ftplib",
        "smtplib", "poplib", "imaplib", "telnetlib", "webbrowser", "xmlrpc", "wsgiref",
        "httpx", "requests", "urllib3", "aiohttp", "anyio", "trio", "paramiko", "fabric",
        "pexpect", "sh", "plumbum", "celery", "redis",
        # the installation's own packages and connections
        "legato", "sqlalchemy", "alembic", "asyncpg", "aiosqlite", "psycopg", "psycopg2",
        "uvicorn", "fastapi", "starlette", "pydantic_settings", "dotenv", "typer", "click",
    }
)  # fmt: skip


def never_allowed(module: str) -> bool:
    """Whether ``module`` is out of reach of steps whatever the allow-lists say."""
    top = module.split(".", 1)[0]
    return top in NEVER_MODULES or top.startswith("_")


def module_refusal(prefix: str) -> str | None:
    """Why ``prefix`` cannot be an allowed step module (None: it can)."""
    if not _MODULE.match(prefix):
        return f"invalid module name {prefix!r}"
    if never_allowed(prefix):
        return f"module {prefix!r} is never allowed in steps"
    return None


def _covers(prefix: str, module: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


@dataclass(frozen=True)
class ModulePolicy:
    """The module prefixes one namespace's steps may call into."""

    prefixes: tuple[str, ...] = ()

    def extended(self, more: Iterable[str]) -> ModulePolicy:
        return ModulePolicy(tuple(dict.fromkeys([*self.prefixes, *more])))

    def allows_module(self, module: str) -> bool:
        return not never_allowed(module) and any(_covers(p, module) for p in self.prefixes)

    def refusal(self, function: str) -> str | None:
        """Why ``module:function`` may not be called (None: it may)."""
        module, _, attr = function.partition(":")
        if never_allowed(module):
            return f"module {module!r} is never allowed in steps"
        if any(part.startswith("_") for part in attr.split(".")):
            return f"{function!r} is private (its name starts with '_')"
        if not self.allows_module(module):
            allowed = ", ".join(self.prefixes) or "none"
            return (
                f"module {module!r} is not a step module of this namespace "
                f"(allowed: {allowed}); an installation admin can allow it"
            )
        return None


def python_functions(
    steps: Iterable[StepDefinition], base: tuple[str | int, ...] = ("steps",)
) -> Iterator[tuple[tuple[str | int, ...], object]]:
    """The path and ``function`` value of every ``uses: python`` step, groups included."""
    for index, step in enumerate(steps):
        here = (*base, index)
        if step.uses == "python":
            yield (*here, "with", "function"), step.with_.get("function")
        if step.steps:
            yield from python_functions(step.steps, (*here, "steps"))
