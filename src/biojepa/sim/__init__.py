"""The virtual lab: a Perturb-seq simulator that keeps its ground truth."""
