"""The command line: one Typer app, one module per command group, one console and one error mapping."""

from nanoresearch.cli.app import app, main

__all__ = ["app", "main"]
