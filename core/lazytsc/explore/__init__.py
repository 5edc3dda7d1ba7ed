"""`lazytsc explore`: bounded exhaustive search of the lazy TSC-deadline protocol.

Letters (alphabet), host setups, the driven engine, invariants, state fingerprints, the
search, shrinking and counterexample files; `run.explore` is the entry point the CLI and
the GUI share.
"""
