"""biojepa: an action-conditioned JEPA world model of the cell."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["WorldModel", "__version__"]


def __getattr__(name: str):
    # The world model pulls in torch; import it only when asked for.
    if name == "WorldModel":
        from biojepa.models.world_model import WorldModel

        return WorldModel
    raise AttributeError(f"module 'biojepa' has no attribute {name!r}")
