"""Incremental panel views agree with the accounting they stand in for (any position)."""

import random

from lazytsc.accounting import caused_by, summarize
from lazytsc.debugger import Session
from lazytsc.resources import builtin_scenario
from lazytsc.scenario import load_scenario

from lazytsc_gui.log_index import CausalIndex, PrefixCounts


def test_prefix_counts_and_causal_index_match_accounting():
    sc = load_scenario(builtin_scenario("tcp_rr"))
    sc.run.duration_ns = 2_000_000
    s = Session(sc, "lazy")
    s.run(breakpoints=[])
    counts, causal = PrefixCounts(s.log), CausalIndex(s.log)
    rng = random.Random(1)
    for p in [0, len(s.log), 1, len(s.log) - 1] + [rng.randrange(len(s.log) + 1) for _ in range(60)]:
        counts.move_to(p)
        assert counts.summary() == summarize(s.log, upto=p), p
    for i in [0, len(s.log) - 1] + [rng.randrange(len(s.log)) for _ in range(60)]:
        assert causal.caused_by(i).tolist() == caused_by(s.log, i).tolist(), i
