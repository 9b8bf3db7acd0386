"""`biojepa benchmark`: every method on identical splits, with the noise ceiling, to one directory."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from biojepa.cli.data import user_errors
from biojepa.errors import DataError

console = Console()
HEADLINE_METRIC = "pearson_delta"


def _parse_seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise DataError(f"--seeds must be comma-separated integers such as 1,2,3, not {text!r}") from None
    if not seeds:
        raise DataError("--seeds is empty; pass e.g. 1,2,3,4,5")
    return seeds


def _log_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Show a warning as one log line (no source excerpt)."""
    logging.getLogger("biojepa").warning(str(message))


def _cell(stats: dict) -> str:
    mean, sd, median = stats.get("mean"), stats.get("sd"), stats.get("median")
    if mean is None:
        return "n/a"
    spread = f" ± {sd:.3f}" if sd is not None else ""
    return f"{mean:.3f}{spread} (median {median:.3f})"


def summary_table(results: dict, metric: str = HEADLINE_METRIC) -> Table:
    """Per method and group: ``metric`` as mean ± sd of per-seed medians, plus the pooled median."""
    groups = list(results["groups"])
    table = Table(title=f"{results['dataset']} · {results['split']} · seeds {results['seeds']} · {metric}")
    table.add_column("method")
    for group in groups:
        table.add_column(f"{group} (n={len(results['groups'][group])})", justify="right")
    for method, by_group in results["methods"].items():
        table.add_row(method, *[_cell(by_group.get(group, {}).get(metric, {})) for group in groups])
    return table


def _parse_training_seed(text: str) -> int | None:
    if text.strip() == "split":
        return None
    try:
        return int(text)
    except ValueError:
        raise DataError(f"--training-seed must be an integer or 'split', not {text!r}") from None


AUTO_JOBS_LIMIT = 8  # each worker holds the data and a fit's memory (the demo's: about 1 GB)


def parse_jobs(text: str) -> int:
    """``--jobs``: a positive integer, or ``auto`` for one worker per available CPU core (at most
    :data:`AUTO_JOBS_LIMIT`)."""
    from biojepa.eval.fits import available_cores

    if text.strip() == "auto":
        return min(available_cores(), AUTO_JOBS_LIMIT)
    try:
        jobs = int(text)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise DataError(f"--jobs must be a positive integer or 'auto', not {text!r}")
    return jobs


def benchmark(
    dataset: Annotated[str, typer.Option("--dataset", help="Registry name or .h5ad path.")],
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    split: Annotated[str, typer.Option("--split", help="Split kind.")] = "unseen_perturbation",
    seeds: Annotated[str, typer.Option("--seeds", help="Comma-separated split seeds.")] = "1,2,3,4,5",
    methods: Annotated[
        str,
        typer.Option(
            "--methods", help="Comma-separated method names, 'all' or 'baselines' (each + ceiling)."
        ),
    ] = "all",
    control_by: Annotated[
        str,
        typer.Option(
            "--control-by",
            help="Observed Δ against the context's control mean ('context') or against controls "
            "re-weighted to each condition's batch mix ('batch'); the baselines train on context Δ.",
        ),
    ] = "context",
    n_hvg: Annotated[
        int | None, typer.Option("--n-hvg", help="Keep the N most variable genes of the training cells.")
    ] = None,
    export_cell_eval: Annotated[
        Path | None, typer.Option("--export-cell-eval", help="Also write cell-eval AnnData pairs here.")
    ] = None,
    training_seed: Annotated[
        str,
        typer.Option(
            "--training-seed",
            help="Seed of the world model's own randomness: an integer used for every split seed, or "
            "'split' to train each split seed with its own value.",
        ),
    ] = "0",
    jobs: Annotated[
        str,
        typer.Option(
            "--jobs",
            help="Fit methods in this many worker processes ('auto': one per CPU core, at most 8), the "
            "cores shared out as torch threads; each worker holds a copy of the data.",
        ),
    ] = "1",
) -> None:
    """Run every method on the same splits; write results.json, per_perturbation.csv, deltas/, report."""
    from biojepa.eval.benchmark import BenchmarkConfig, resolve_methods, run_benchmark
    from biojepa.eval.report import write_report

    handler = RichHandler(console=console, show_path=False, show_time=False)
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[handler], force=True)
    with user_errors():
        if control_by not in ("context", "batch"):
            raise DataError(f"--control-by must be 'context' or 'batch', not {control_by!r}")
        config = BenchmarkConfig(
            dataset=dataset,
            split=split,
            seeds=_parse_seeds(seeds),
            methods=tuple(m.strip() for m in methods.split(",") if m.strip()),
            control_by=control_by,  # type: ignore[arg-type]
            n_hvg=n_hvg,
            training_seed=_parse_training_seed(training_seed),
            jobs=parse_jobs(jobs),
        )
        total = len(config.seeds) * len(resolve_methods(config.methods))
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as bar, warnings.catch_warnings():
            warnings.showwarning = _log_warning
            task = bar.add_task("loading data", total=total)

            def step(description: str) -> None:
                bar.update(task, description=f"done: {description}", advance=1)

            results = run_benchmark(config, out, export_cell_eval=export_cell_eval, progress=step)
        console.print(summary_table(results))
        report = write_report(out)
    console.print(f"results in {out} · report {report}")


def register(app: typer.Typer) -> None:
    """Add ``benchmark`` to the root app."""
    app.command("benchmark")(benchmark)
