"""Training throughput on a simulated screen: cells/s, counted FLOPs and the share of measured matmul speed.

Run ``python -m biojepa.train.speed --preset screen --out benchmarks/results/model_speed.json``. The MLP
encoder's report is the top level of ``--out``; ``--encoder program_tokens`` measures the packaged
``program_tokens`` config instead and writes its report under that key, keeping the rest of the file; that
report repeats the MLP's fp32 step in the same run, for a comparison under the same conditions.
"""

from __future__ import annotations

import argparse
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
from biojepa.train.config import default_config
from biojepa.train.data import CellTable


def matmul_gflops(size: int = 2048, repeats: int = 10, dtype: torch.dtype = torch.float32) -> float:
    """Measured dense matmul throughput of this machine (GFLOP/s) at the current thread count."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


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


def main() -> None:
    """Measure and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="screen")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--encoder", choices=ENCODERS, default="mlp")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    from biojepa.data.preprocess import prepare
    from biojepa.sim import simulate

    adata = prepare(simulate(args.preset, 0))
    table = CellTable.from_anndata(adata, list(map(str, adata.var_names)))
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    peak32 = matmul_gflops()
    peak16 = matmul_gflops(dtype=torch.bfloat16)
    fp32 = pretrain_step_speed(table, args.steps, encoder=args.encoder)
    bf16 = pretrain_step_speed(table, args.steps, bf16=True, encoder=args.encoder)
    option = "" if args.encoder == "mlp" else f" --encoder {args.encoder}"
    option += "" if args.threads is None else f" --threads {args.threads}"
    report = {
        "command": f"python -m biojepa.train.speed --preset {args.preset} --steps {args.steps}{option} "
        f"--out {args.out}",
        "config": ENCODER_CONFIGS[args.encoder],
        "preset": args.preset,
        "cells": adata.n_obs,
        "genes": adata.n_vars,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "matmul_gflops_fp32": peak32,
        "matmul_gflops_bf16": peak16,
        "pretrain_step_fp32": fp32 | {"fraction_of_matmul_peak": fp32["gflops_per_second"] / peak32},
        "pretrain_step_bf16_autocast": bf16 | {"fraction_of_matmul_peak": bf16["gflops_per_second"] / peak16},
    }
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
