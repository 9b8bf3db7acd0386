"""Per-gene prior features, so targets never perturbed in training still get informative input."""
