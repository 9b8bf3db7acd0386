"""Training loops, schedules and checkpoints (safetensors + JSON)."""
