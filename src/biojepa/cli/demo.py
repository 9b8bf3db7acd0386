"""`biojepa demo`: the whole job end to end — data, model, every baseline, the noise ceiling, a report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from biojepa.cli.benchmark import benchmark
from biojepa.cli.data import user_errors

console = Console()
DEMO_PRESET = "demo"


def demo(
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("demo_output"),
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            help="Registry name or .h5ad path; by default a screen is simulated (no data needed).",
        ),
    ] = None,
    seeds: Annotated[str, typer.Option("--seeds", help="Comma-separated split seeds.")] = "1,2,3,4,5",
    sim_seed: Annotated[int, typer.Option("--sim-seed", help="Seed of the simulated screen.")] = 0,
    methods: Annotated[
        str, typer.Option("--methods", help="Comma-separated method names, or 'all'.")
    ] = "all",
    jobs: Annotated[
        str,
        typer.Option(
            "--jobs", help="Fit methods in this many worker processes; 'auto': one per CPU core, at most 8."
        ),
    ] = "auto",
) -> None:
    """Simulate a screen (or load DATASET), train the world model, benchmark it against every baseline
    and the noise ceiling on unseen perturbations, and write the HTML report."""
    started = time.perf_counter()
    with user_errors():
        out.mkdir(parents=True, exist_ok=True)
        if dataset is None:
            from biojepa.sim import Simulator, preset_config, write_simulation

            path = out / f"sim_{DEMO_PRESET}_seed{sim_seed}.h5ad"
            console.print(f"simulating the '{DEMO_PRESET}' screen (seed {sim_seed}) → {path}")
            n_cells = write_simulation(Simulator(preset_config(DEMO_PRESET, sim_seed)), path)
            console.print(f"{n_cells:,} cells simulated; ground truth kept beside them")
            dataset = str(path)
    benchmark(
        dataset=dataset,
        out=out / "benchmark",
        split="unseen_perturbation",
        seeds=seeds,
        methods=methods,
        control_by="context",
        n_hvg=None,
        export_cell_eval=None,
        training_seed="0",
        jobs=jobs,
    )
    console.print(f"demo finished in {time.perf_counter() - started:.0f} s; open {out / 'benchmark'}")


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the root app."""
    app.command("demo")(demo)
