"""`biojepa simulate`: write a simulated Perturb-seq screen with its ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from biojepa.cli.data import user_errors
from biojepa.errors import DataError

console = Console()


def simulate(
    out: Annotated[
        Path, typer.Option("--out", help="Output .h5ad (NAME.sim.toml and NAME.edges.tsv beside).")
    ],
    preset: Annotated[
        str, typer.Option("--preset", help="tiny, demo, screen, compounds or atlas (ignored with --config).")
    ] = "demo",
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same file.")] = 0,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="A simulator TOML (e.g. a NAME.sim.toml) instead of a preset."),
    ] = None,
) -> None:
    """Simulate a screen (raw counts, canonical obs) and keep its ground truth beside it."""
    from biojepa.sim import Simulator, from_toml, preset_config, write_simulation

    with user_errors():
        if config is not None:
            if not config.is_file():
                raise DataError(f"config file {config} not found")
            sim_config = from_toml(config.read_text()).with_seed(seed)
        else:
            sim_config = preset_config(preset, seed)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("solving steady states", total=None)
            sim = Simulator(sim_config)

            def step(done: int, total: int) -> None:
                bar.update(task, description="sampling cells", completed=done, total=total)

            n_cells = write_simulation(sim, out, progress=step)
    console.print(
        f"wrote {n_cells:,} cells × {len(sim.genes):,} genes to {out} "
        f"(preset {sim_config.preset!r}, seed {sim_config.seed}; config and network beside it)"
    )


def register(app: typer.Typer) -> None:
    """Add ``simulate`` to the root app."""
    app.command("simulate")(simulate)
