"""Engine.probe_event and Engine.observe: the debugger's window into one event's state."""

from lazytsc.engine import Engine
from lazytsc.observe import FIELD_TYPES, STATE_GETTERS
from lazytsc.resources import builtin_scenarios
from lazytsc.scenario import load_scenario


def _seed_overwrite() -> Engine:
    return Engine(load_scenario(builtin_scenarios()["seed_overwrite"]), "lazy")


def test_probe_fires_once_right_after_its_event():
    eng = _seed_overwrite()
    eng.run(max_events=10)
    seen: list[tuple[int, int]] = []
    target = len(eng.log) + 3
    eng.probe_event(target, lambda e: seen.append((len(e.log), e.now)))
    eng.run(max_events=50)
    assert seen and seen[0][0] == target + 1  # called with the event already logged
    assert len(seen) == 1
    assert eng.probe_index == -1


def test_probe_disarmed_by_none():
    eng = _seed_overwrite()
    calls: list[int] = []
    eng.probe_event(5, lambda e: calls.append(1))
    eng.probe_event(5, None)
    eng.run(max_events=20)
    assert calls == []


def test_observe_names_are_typed():
    eng = _seed_overwrite()
    eng.run(max_events=12)
    assert set(FIELD_TYPES) == set(STATE_GETTERS)
    for name, kind in FIELD_TYPES.items():
        value = eng.observe(0, name)
        assert isinstance(value, str if kind == "mode" else int), name
