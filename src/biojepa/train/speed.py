"""Training throughput on a simulated screen: cells/s, counted FLOPs and the share of measured matmul speed.

Run ``python -m biojepa.train.speed --preset screen --out benchmarks/results/model_speed.json``. It times
the pretraining step alone (fp32 and bf16 autocast) and a whole training run of the world model as the
benchmark fits it (the unseen-perturbation split of seed 1, all three stages, the refits after them),
stage by stage, with each stage's epoch FLOPs counted in a second, shorter run. The MLP
encoder's report is the top level of ``--out``; ``--encoder program_tokens`` measures the packaged
``program_tokens`` config instead and writes its report under that key, keeping the rest of the file; that
report repeats the MLP's fp32 step in the same run, for a comparison under the same conditions.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from biojepa.models.encoder import ENCODERS
from biojepa.models.module import BioJepaModule, ModelConfig
from biojepa.models.regularizers import sigreg
from biojepa.train.checkpoints import atomic_write_bytes
from biojepa.train.config import TrainConfig, default_config
from biojepa.train.data import CellTable

STAGE_NAMES = ("pretrain", "decoder", "dynamics")
_SET_UP_STAGES = ("decoder", "dynamics")  # their first epoch also prepares what later epochs reuse


def matmul_gflops(size: int = 2048, repeats: int = 10, dtype: torch.dtype = torch.float32) -> float:
    """Measured dense matmul throughput of this machine (GFLOP/s) at the current thread count."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def cpu_description() -> dict:
    """This CPU: its model name, the vector instructions torch dispatches to and whether matrix products
    in bf16 run natively (AVX512-BF16 or AMX); without that bf16 is emulated and not worth timing."""
    name = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return {
        "model": name,
        "torch_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
    }


# the packaged config that runs each encoder
ENCODER_CONFIGS = {"mlp": "default", "program_tokens": "program_tokens"}


def pretrain_step_speed(table: CellTable, steps: int = 20, bf16: bool = False, encoder: str = "mlp") -> dict:
    """Time the encoder pretraining step (2 masked views + SIGReg, forward and backward, AdamW)."""
    config = default_config(ENCODER_CONFIGS[encoder])
    module = BioJepaModule(ModelConfig(n_genes=table.x.shape[1], n_targets=1, n_actions=2, **config.model))
    encoder = module.encoder.train()
    encoder.set_statistics(table.x, table.log_library)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=config.pretrain.lr)
    batch = config.pretrain.batch_size
    rng = np.random.default_rng(0)

    def step() -> None:
        idx = torch.from_numpy(rng.choice(len(table.x), batch, replace=False))
        x, mask, lib = table.x[idx], table.gene_mask[idx], table.log_library[idx]
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
        with autocast:
            views = [encoder(x, mask * (torch.rand(mask.shape) >= 0.3), lib) for _ in range(2)]
            centre = torch.stack(views).mean(0)
            pred = torch.stack([(v - centre).square().sum(1).mean() for v in views]).mean()
            reg = torch.stack([sigreg(v.float(), config.pretrain.n_slices) for v in views]).mean()
            loss = 0.95 * pred + 0.05 * reg
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    return {
        "batch_cells": batch,
        "step_seconds": seconds,
        "cells_per_second": batch / seconds,
        "flops_per_step": flops,
        "gflops_per_second": flops / seconds / 1e9,
    }


def _cells_per_epoch(config: TrainConfig, stage: str, n_cells: int) -> int:
    """Cells each epoch of ``stage`` passes through the model (pre-cells and post-cells of dynamics)."""
    if stage == "pretrain":
        return max(1, n_cells // config.pretrain.batch_size) * config.pretrain.batch_size
    if stage == "decoder":
        return n_cells
    d = config.dynamics
    return d.steps_per_epoch * (2 * d.cell_batch + d.conditions_per_step * d.controls_per_condition)


def _fit(
    adata, masks: dict, config: TrainConfig, priors, counter: FlopCounterMode | None = None
) -> tuple[list[tuple[str, float, float]], float]:
    """Fit the world model (under ``counter`` when given); return ``(stage, seconds, cumulative FLOPs)`` at
    each epoch's end and the seconds after the last epoch (memory refits, gates, calibration)."""
    from biojepa.models.world_model import WorldModel

    marks: list[tuple[str, float, float]] = []
    last = [time.perf_counter()]

    def on_epoch(stage: str, epoch: int, n_epochs: int, record: dict) -> None:
        now = time.perf_counter()
        marks.append((stage, now - last[0], 0.0 if counter is None else float(counter.get_total_flops())))
        last[0] = now

    with counter if counter is not None else nullcontext():
        model = WorldModel(config, priors=priors)
        model.fit(adata, train_mask=masks["train"], val_mask=masks["val"], on_epoch=on_epoch)
    return marks, time.perf_counter() - last[0]


def training_run_speed(adata, peak32: float, config: TrainConfig | None = None, priors=None) -> dict:
    """Per stage of a whole world-model fit: epochs, seconds, cells/s, GFLOP/s and share of ``peak32``.

    ``priors`` are the gene priors the fit uses (the benchmark's: the simulator's own on simulated data);
    None loads those the config names.

    Seconds come from a full run; each stage's FLOPs per epoch from a second run under a FLOP counter,
    which counts matrix products only: one pretraining epoch, and two of the decoder and of dynamics,
    whose first epochs also set up (the frozen encoder's latents of every cell, the effect memory). The
    per-epoch figures of those two stages leave their first epoch out, in both runs.
    """
    from biojepa.data.splits import make_split

    config = config or default_config()
    masks = make_split(adata, "unseen_perturbation", 1).cell_masks(adata)
    n_cells = int((masks["train"] | masks["control"]).sum())
    started = time.perf_counter()
    marks, after = _fit(adata, masks, config, priors)
    total = time.perf_counter() - started
    short = copy.deepcopy(config)
    short.pretrain.epochs, short.decoder.epochs, short.dynamics.epochs = 1, 2, 2
    counted, _ = _fit(adata, masks, short, priors, FlopCounterMode(display=False))
    cumulative = [0.0] + [flops for _, _, flops in counted]
    last_epoch_flops = {name: cumulative[i + 1] - cumulative[i] for i, (name, _, _) in enumerate(counted)}
    stages = {}
    for stage in STAGE_NAMES:
        seconds = [s for name, s, _ in marks if name == stage]
        if not seconds:
            continue
        steady = seconds[1:] if stage in _SET_UP_STAGES and len(seconds) > 1 else seconds
        per_epoch = float(np.median(steady))
        cells = _cells_per_epoch(config, stage, n_cells)
        rate = last_epoch_flops[stage] / per_epoch / 1e9
        stages[stage] = {
            "epochs": len(seconds),
            "seconds": sum(seconds),
            "seconds_per_epoch": per_epoch,
            "cells_per_epoch": cells,
            "cells_per_second": cells / per_epoch,
            "flops_per_epoch": last_epoch_flops[stage],
            "gflops_per_second": rate,
            "fraction_of_matmul_peak": rate / peak32,
        }
    return {"training_cells": n_cells, "fit_seconds": total, "after_epochs_seconds": after, "stages": stages}


def main() -> None:
    """Measure and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="screen")
    parser.add_argument(
        "--data", type=Path, default=None, help="a screen written by `biojepa simulate` instead"
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--encoder", choices=ENCODERS, default="mlp")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--skip-training-run", action="store_true", help="time the pretraining step only")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    import anndata as ad

    from biojepa.data.preprocess import prepare
    from biojepa.sim import priors_of, simulate

    adata = prepare(simulate(args.preset, 0) if args.data is None else ad.read_h5ad(args.data))
    table = CellTable.from_anndata(adata, list(map(str, adata.var_names)))
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cpu = cpu_description()
    peak32 = matmul_gflops()
    fp32 = pretrain_step_speed(table, args.steps, encoder=args.encoder)
    bf16_report: dict = {"skipped": f"no native bf16 matrix products on this CPU ({cpu['torch_capability']})"}
    peak16 = None
    if cpu["native_bf16"]:
        peak16 = matmul_gflops(dtype=torch.bfloat16)
        bf16 = pretrain_step_speed(table, args.steps, bf16=True, encoder=args.encoder)
        bf16_report = bf16 | {"fraction_of_matmul_peak": bf16["gflops_per_second"] / peak16}
    option = "" if args.data is None else f" --data {args.data}"
    option += "" if args.encoder == "mlp" else f" --encoder {args.encoder}"
    option += "" if args.threads is None else f" --threads {args.threads}"
    option += " --skip-training-run" if args.skip_training_run else ""
    report = {
        "command": f"python -m biojepa.train.speed --preset {args.preset} --steps {args.steps}{option} "
        f"--out {args.out}",
        "config": ENCODER_CONFIGS[args.encoder],
        "preset": args.preset,
        "cells": adata.n_obs,
        "genes": adata.n_vars,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "cpu": cpu,
        "matmul_gflops_fp32": peak32,
        "matmul_gflops_bf16": peak16,
        "pretrain_step_fp32": fp32 | {"fraction_of_matmul_peak": fp32["gflops_per_second"] / peak32},
        "pretrain_step_bf16_autocast": bf16_report,
    }
    if args.encoder == "mlp" and not args.skip_training_run:
        report["training_run_fp32"] = training_run_speed(adata, peak32, priors=priors_of(adata))
    if args.encoder != "mlp":
        report["mlp_pretrain_step_fp32_same_run"] = pretrain_step_speed(table, args.steps)
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if args.encoder == "mlp":
        report |= {name: previous[name] for name in ENCODERS if name in previous}
    else:
        report = previous | {args.encoder: report}
    atomic_write_bytes(args.out, (json.dumps(report, indent=2) + "\n").encode())
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
