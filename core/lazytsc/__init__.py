"""lazytsc: a stepping discrete-event model of KVM lazy TSC-deadline (the engine)."""

from .engine_build import select as _select_engine

__version__ = "0.1.0"

# Compiled (mypyc) or pure-Python engine modules: decided before any of them is imported.
_select_engine()
