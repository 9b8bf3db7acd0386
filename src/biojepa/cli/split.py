"""`biojepa split`: write a train / val / test split of a prepared file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from biojepa.cli.data import console, user_errors


def split_command(
    prepared: Annotated[Path, typer.Argument(help="Prepared .h5ad (from `biojepa data prepare`).")],
    out: Annotated[Path, typer.Option("--out", help="Output split JSON.")],
    kind: Annotated[
        str, typer.Option(help="unseen_perturbation, doubles, unseen_context or unseen_compound.")
    ] = "unseen_perturbation",
    seed: Annotated[int, typer.Option(help="Random seed; the split is deterministic per seed.")] = 1,
    test_fraction: Annotated[float, typer.Option(help="Fraction of perturbations held out for test.")] = 0.25,
    val_fraction: Annotated[float, typer.Option(help="Fraction of the rest used for validation.")] = 0.1,
    holdout_context: Annotated[
        str | None, typer.Option(help="Test context of an unseen_context split (default: drawn).")
    ] = None,
) -> None:
    """Split PREPARED's conditions into train / val / test; control cells are never test targets."""
    from biojepa.data.preprocess import load_prepared
    from biojepa.data.splits import make_split

    with user_errors():
        adata = load_prepared(prepared)
        split = make_split(
            adata,
            kind,
            seed,
            test_fraction=test_fraction,
            val_fraction=val_fraction,
            holdout_context=holdout_context,
        )
        masks = split.cell_masks(adata)
        split.save(out)
    sizes = ", ".join(
        f"{part} {len(getattr(split, part))} conditions / {int(masks[part].sum()):,} cells"
        for part in ("train", "val", "test")
    )
    console.print(f"[green]wrote {out}[/] ({kind}, seed {seed}): {sizes}")
    for name, keys in split.groups.items():
        console.print(f"  test group {name}: {len(keys)} conditions")


def register(app: typer.Typer) -> None:
    """Add the ``split`` command to the root app."""
    app.command("split")(split_command)
