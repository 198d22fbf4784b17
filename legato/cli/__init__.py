"""The ``legato`` command line (Typer + Rich); the app is ``legato.cli.main:app``."""

from __future__ import annotations

__all__: list[str] = []
