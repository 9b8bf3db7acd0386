"""`biojepa train` and `biojepa predict`: fit the world model on a split, predict interventions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from biojepa.cli.data import console, user_errors


def train_command(
    data: Annotated[Path, typer.Option("--data", help="Prepared .h5ad (from `biojepa data prepare`).")],
    split: Annotated[Path, typer.Option("--split", help="Split JSON (from `biojepa split`).")],
    out: Annotated[Path, typer.Option("--out", help="Output directory: checkpoints and the final model.")],
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML config (default: the packaged default.toml).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (overrides the config's).")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the last checkpoint in --out.")
    ] = False,
) -> None:
    """Pretrain the encoder, train decoder and dynamics on the split's training cells; validate on its val."""
    from biojepa.data.preprocess import load_prepared
    from biojepa.data.splits import Split
    from biojepa.models.world_model import WorldModel
    from biojepa.sim import priors_of
    from biojepa.train.config import TrainConfig, default_config

    with user_errors():
        cfg = TrainConfig.from_toml(config) if config is not None else default_config()
        if seed is not None:
            cfg.seed = seed
        adata = load_prepared(data)
        masks = Split.load(split).cell_masks(adata)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            tasks: dict[str, int] = {}

            def on_epoch(stage: str, epoch: int, total: int, record: dict) -> None:
                if stage not in tasks:
                    tasks[stage] = progress.add_task(stage, total=total, info="")
                shown = {k: v for k, v in record.items() if isinstance(v, float)}
                info = "  ".join(f"{k} {v:.3g}" for k, v in list(shown.items())[:4])
                progress.update(tasks[stage], completed=epoch + 1, info=info)

            model = WorldModel(cfg, priors=priors_of(adata)).fit(
                adata,
                masks["train"],
                masks["val"] if masks["val"].any() else None,
                out=out,
                resume=resume,
                on_epoch=on_epoch,
            )
    last = [h for h in model.history if h["stage"] == "dynamics"]
    best = last[-1].get("best_val_pearson_delta") if last else None
    note = f"; best validation Pearson Δ {best:.3f}" if best is not None else ""
    console.print(f"[green]wrote {out / 'model.safetensors'}[/] and model.json{note}")


def predict_command(
    model: Annotated[Path, typer.Option("--model", help="Directory written by `biojepa train`.")],
    cells: Annotated[Path, typer.Option("--cells", help="Prepared .h5ad of control (pre-state) cells.")],
    perturbations: Annotated[
        str, typer.Option("--perturbations", help="Comma-separated interventions, e.g. 'STAT1,JAK2+IRF1'.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output .h5ad of predicted expression.")],
) -> None:
    """Predict the post-intervention expression of CELLS under each perturbation; write AnnData."""
    from biojepa.data.io import write_h5ad
    from biojepa.data.preprocess import load_prepared
    from biojepa.models.world_model import WorldModel
    from biojepa.sim import priors_of

    with user_errors():
        adata = load_prepared(cells)
        world = WorldModel.load(model, priors=priors_of(adata))
        _, status = world.resolve_actions(perturbations)
        from_priors = sorted(t for t, how in status.items() if how == "prior")
        if from_priors:
            console.print(
                f"[yellow]not seen in training, predicted from gene priors:[/] {', '.join(from_priors)}"
            )
        predicted = world.predict(adata, perturbations)
        write_h5ad(predicted, out)
    console.print(f"[green]wrote {out}[/] ({predicted.n_obs:,} predicted cells × {predicted.n_vars:,} genes)")


def register(app: typer.Typer) -> None:
    """Add the ``train`` and ``predict`` commands to the root app."""
    app.command("train")(train_command)
    app.command("predict")(predict_command)
