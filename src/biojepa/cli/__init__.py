"""The ``biojepa`` command line: one module per command group, each exposing ``register(app)``."""

from __future__ import annotations

import typer

from biojepa.cli import benchmark, data, demo, simulate, split, train

app = typer.Typer(
    name="biojepa",
    help="Action-conditioned JEPA world model of the cell: data, simulate, split, train, predict, benchmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

for _module in (data, split, simulate, train, benchmark, demo):
    _module.register(app)


@app.command()
def version() -> None:
    """Print the installed biojepa version."""
    from biojepa import __version__

    typer.echo(__version__)


def main() -> None:
    """Console entry point."""
    app()
