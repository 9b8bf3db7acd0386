"""The evaluation contract: pseudobulk deltas, metrics, baselines, noise ceiling and the benchmark."""
