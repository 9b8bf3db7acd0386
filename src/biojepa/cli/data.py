"""`biojepa data`: list, fetch and prepare datasets."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from biojepa.config import data_dir
from biojepa.errors import BioJepaError, DownloadError

console = Console()
err_console = Console(stderr=True)

data_app = typer.Typer(help="List, download and prepare perturbation datasets.", no_args_is_help=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Show a :class:`BioJepaError` as a one-line message (no traceback) and exit with status 1."""
    try:
        yield
    except BioJepaError as exc:
        err_console.print(f"[bold red]Error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


@data_app.command("list")
def list_datasets() -> None:
    """Show every registered dataset, whether it is present in the data directory, its license and path."""
    from biojepa.data.registry import DATASETS

    root = data_dir()
    table = Table(title=f"biojepa datasets (data directory: {root})")
    for column in ("name", "local", "license", "path", "title"):
        table.add_column(column, overflow="fold")
    for entry in DATASETS.values():
        path = entry.local_path(root)
        table.add_row(
            entry.name,
            "[green]yes[/]" if path else "[red]no[/]",
            entry.license,
            str(path if path else root / entry.paths[0]),
            entry.title,
        )
    console.print(table)


@data_app.command("fetch")
def fetch(
    name: Annotated[str, typer.Argument(help="Registry name (see `biojepa data list`).")],
    force: Annotated[bool, typer.Option("--force", help="Download even if the dataset is present.")] = False,
) -> None:
    """Download a registered dataset into the data directory (resumable, checksum-verified)."""
    from biojepa.data.download import download_file, extract_archive, sha256sum
    from biojepa.data.registry import get_dataset

    with user_errors():
        entry = get_dataset(name)
        root = data_dir()
        present = entry.local_path(root)
        if present is not None and not force:
            console.print(f"{entry.name} is already present at {present} (use --force to download again)")
            return
        for remote in entry.remote:
            dest = root / remote.dest
            if force:
                dest.unlink(missing_ok=True)
            console.print(f"downloading {remote.url} → {dest}")
            download_file(remote.url, dest, sha256=remote.sha256, progress=True)
            if remote.sha256 is None:
                console.print(
                    f"[yellow]no checksum is registered for this file[/]; its sha256 is {sha256sum(dest)}"
                )
            if remote.extract:
                extract_archive(dest, dest.parent)
        path = entry.local_path(root)
        if path is None:
            raise DownloadError(
                f"{entry.name} was downloaded but none of {list(entry.paths)} exists under {root}; "
                "the deposit's layout may have changed - check the files and the registry entry"
            )
        console.print(f"[green]{entry.name} ready at {path}[/]")


@data_app.command("prepare")
def prepare_command(
    source: Annotated[str, typer.Argument(help="Registry name or path to an .h5ad file.")],
    out: Annotated[Path, typer.Option("--out", help="Output .h5ad file.")],
    min_genes: Annotated[int, typer.Option(help="Keep cells with at least this many detected genes.")] = 1,
    min_cells: Annotated[int, typer.Option(help="Keep genes detected in at least this many cells.")] = 1,
    guide_filter: Annotated[
        bool, typer.Option("--guide-filter", help="Keep only confidently assigned low-MOI cells.")
    ] = False,
    context: Annotated[
        str | None, typer.Option(help="Cell context, where the file does not name it.")
    ] = None,
    perturbation_type: Annotated[
        str | None, typer.Option(help="crispri / crispr_ko / crispra / compound, where not recorded.")
    ] = None,
) -> None:
    """Convert SOURCE to the canonical schema, run QC and log-normalise once; write OUT."""
    from biojepa.data import load_dataset
    from biojepa.data.io import write_h5ad
    from biojepa.data.preprocess import prepare
    from biojepa.data.registry import DATASETS

    with user_errors():
        raw = load_dataset(source, context=context, perturbation_type=perturbation_type)
        dataset = source if source in DATASETS else Path(source).stem
        prepared = prepare(
            raw, dataset=dataset, min_genes=min_genes, min_cells=min_cells, guide_filter=guide_filter
        )
        write_h5ad(prepared, out)
    obs = prepared.obs
    qc = prepared.uns["biojepa"]["qc"]
    perturbations = obs["perturbation"].astype(str)
    console.print(
        f"[green]wrote {out}[/]: {prepared.n_obs:,} cells × {prepared.n_vars:,} genes; "
        f"{perturbations[perturbations != 'control'].nunique()} perturbations + control "
        f"({int((perturbations == 'control').sum()):,} control cells); "
        f"{obs['context'].nunique()} context(s); {obs['batch'].nunique()} batch(es)"
    )
    console.print(
        f"QC removed {qc['cells_removed_min_genes'] + qc['cells_removed_guide_filter']:,} cells and "
        f"{qc['genes_removed_min_cells']:,} genes"
        + (f"; groups lost entirely: {qc['groups_removed']}" if qc["groups_removed"] else "")
    )


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group to the root app."""
    app.add_typer(data_app, name="data")
