"""lazytsc: a stepping discrete-event model of KVM lazy TSC-deadline (the engine)."""

__version__ = "0.1.0"
