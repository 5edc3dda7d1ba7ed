"""`lazytsc explore`: the search, its invariants, shrinking, the counterexample files, the CLI.

Searches here are small (depth 2-3, one host setup, in-process) so the file runs in
seconds; docs/explore.md has what a ten-minute search proves and finds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lazytsc.cli import main
from lazytsc.engine import Engine
from lazytsc.expect import evaluate, run_results
from lazytsc.explore.alphabet import LETTERS, load_alphabet, make_alphabet
from lazytsc.explore.canon import fingerprint
from lazytsc.explore.driver import Driver
from lazytsc.explore.invariants import FINDINGS
from lazytsc.explore.run import Options, explore
from lazytsc.explore.setups import SETUPS
from lazytsc.scenario import ScenarioError, load_scenario


def search(tmp_path: Path, depth: int = 2, setups=("hv",), variants=("v2",), **kw) -> object:
    return explore(Options(variants=variants, setups=setups, depth=depth, jobs=1, out_dir=str(tmp_path / "cx"), **kw))


def by_key(report) -> dict[tuple[str, str], object]:
    return {(f.finding, f.subclass): f for f in report.findings}


def apply(d: Driver, name: str, vcpu: int = 0) -> list:
    for letter, v, move in d.moves():
        if letter.name == name and v == vcpu:
            return d.apply(letter, v, move)
    raise AssertionError(f"{name} is not enabled")


# ---- the findings of V2 and V3 that the patch is known for ----------------------------------------
def test_init_without_reregistration_is_the_known_hang(tmp_path):
    """kvm_lapic_reset() calls kvm_lazy_tscdeadline_exit(), which zeroes cached_armed and unmaps
    the page but never writes the guest's `armed`: after INIT the guest's kvm_lapic_next_deadline()
    skips every deadline >= the stale armed, and no host timer exists for it."""
    report = search(tmp_path, depth=3)
    found = by_key(report)
    hang = found[("known_hang", "after init")]
    assert hang.program == ["dl_far(delta_cycles=6000)", "init"]
    lost = found[("lost_timer", "known_hang after init")]
    assert [w.split("(")[0] for w in lost.program] == ["dl_far", "init", "dl_far"]
    assert lost.title == "V2 [hv]: lost timer after INIT without re-registration (the known hang), 3 ops"
    assert all(f.verified for f in report.findings), [(f.title, f.problem) for f in report.findings if not f.verified]


def test_v2_reregistration_keeps_a_stale_cached_armed_v3_does_not(tmp_path):
    """V2's MSR_KVM_LAZY_TSCDEADLINE write runs kvm_lazy_tscdeadline_init() on a page the guest
    just zeroed, keeping the old cached_armed; V3 runs kvm_lazy_tscdeadline_exit() first."""
    report = search(tmp_path, depth=2, variants=("v2", "v3"))
    v2 = {k for k, f in by_key(report).items() if f.variant == "v2"}
    v3 = {(f.finding, f.subclass) for f in report.findings if f.variant == "v3"}
    assert ("page_agrees", "stale cached_armed") in v2
    assert ("page_agrees", "stale cached_armed") not in v3
    f = next(f for f in report.findings if f.variant == "v2" and f.subclass == "stale cached_armed")
    assert [w.split("(")[0] for w in f.program] == ["dl_far", "pv_enable"]


def test_restore_order_leaves_cached_armed_zero_under_a_stale_armed(tmp_path):
    """Restoring IA32_TSC_DEADLINE before MSR_KVM_LAZY_TSCDEADLINE: kvm_lazy_tscdeadline_update()
    returns early (the PV MSR is not enabled yet), then kvm_lazy_tscdeadline_init() maps a page
    whose `armed` came with guest memory: cached_armed == 0 under a non-zero armed."""
    found = by_key(search(tmp_path, depth=2))
    f = found[("page_agrees", "cached_armed == 0")]
    assert [w.split("(")[0] for w in f.program] == ["dl_far", "mig_vmm_late_pv"]


# ---- seeded bugs: each found and shrunk to its minimal program ------------------------------------
def _start_sw_tscdeadline_without_clear(self, vid: int) -> None:
    """start_sw_tscdeadline() as the seed has it, minus kvm_lazy_tscdeadline_clear() in the expired branch."""
    t = self.s[vid]
    if not t.tscdeadline:
        return
    now = self.sched.now
    guest_tsc = self.clock.tsc(vid, now)
    if t.tscdeadline > guest_tsc:
        ns = self.clock.ns_for_cycles(vid, t.tscdeadline - guest_tsc)
        if ns > self.advance[vid]:
            self.hrtimer_start(vid, now + ns - self.advance[vid])
            return
    self.apic_timer_expired(vid, False)


def test_seeded_missing_clear_in_start_sw_tscdeadline(tmp_path, monkeypatch):
    """start_sw_tscdeadline() clears armed when the deadline is already past: no hrtimer is armed,
    so no kick will ever clear it. Without that clear a past deadline leaves armed set with
    nothing behind it: found after one letter (the search stops that path there; the lost
    timer that follows is its consequence)."""
    clean = by_key(search(tmp_path / "clean", depth=2, setups=("sw",)))
    assert ("armed_backed", "") not in clean and ("lost_timer", "") not in clean
    from lazytsc.lapic_timer import LapicTimer

    monkeypatch.setattr(LapicTimer, "start_sw_tscdeadline", _start_sw_tscdeadline_without_clear)
    found = by_key(search(tmp_path / "bug", depth=2, setups=("sw",)))
    f = found[("armed_backed", "")]
    assert f.program == ["dl_past(ago_cycles=8)"] and f.verified


def test_seeded_update_that_does_not_write_the_guest_page(tmp_path, monkeypatch):
    """kvm_lazy_tscdeadline_update() writes guest->armed and cached_armed together; a version that
    only caches it leaves the two views of the page apart after the first accepted write."""
    from lazytsc.lazy_host import KVM_MSR_ENABLED, LazyHost
    from lazytsc.taxonomy import KindInts

    def update(self, vid: int, tsc: int) -> None:
        p = self.s[vid]
        if p.msr_val & KVM_MSR_ENABLED and p.mapped:
            p.cached_armed = tsc
            self.sched.ev(vid, KindInts.LAZY_UPDATE, a=tsc)

    monkeypatch.setattr(LazyHost, "update", update)
    found = by_key(search(tmp_path, depth=1))
    f = found[("page_agrees", "stale cached_armed")]
    # The smallest delta that keeps the deadline armed past the letter's 2 us (a shorter one
    # expires at once and the kick zeroes both views).
    assert f.program == ["dl_far(delta_cycles=6000)"] and f.verified
    assert f.kind == "update"


def test_seeded_kick_without_the_cached_armed_guard(tmp_path, monkeypatch):
    """kvm_lazy_tscdeadline_kick() returns at `!hlt->cached_armed`. After a restore that mapped the
    page with cached_armed == 0, the restored deadline's expiry therefore leaves the stale armed in
    place (the 3-letter lost timer). Without that part of the guard the kick re-arms `pending`,
    as classic mode's MSR write would: no invariant is violated, and that hang is gone."""
    assert ("lost_timer", "known_hang after mig_vmm_late_pv") in by_key(search(tmp_path / "clean", depth=3))
    from lazytsc.lazy_host import KVM_MSR_ENABLED, LazyHost

    monkeypatch.setattr(LazyHost, "_guard", lambda self, p: bool(p.msr_val & KVM_MSR_ENABLED) and p.mapped)
    found = by_key(search(tmp_path / "bug", depth=3))
    assert ("lost_timer", "known_hang after mig_vmm_late_pv") not in found
    assert not {k for k in found if k[0] in ("armed_backed", "no_phantom", "livelock")}


# ---- determinism, merging, counterexample files -------------------------------------------------------
def test_deterministic_and_the_same_on_two_cores(tmp_path):
    a = search(tmp_path / "a", depth=3, setups=("hv", "sw"))
    b = explore(Options(variants=("v2",), setups=("hv", "sw"), depth=3, jobs=2, out_dir=str(tmp_path / "b")))
    strip = [(t.variant, t.setup, t.depth_done, t.states, t.transitions, [(f.finding, f.subclass, f.program, f.event) for f in t.findings]) for t in a.tasks]
    assert strip == [(t.variant, t.setup, t.depth_done, t.states, t.transitions, [(f.finding, f.subclass, f.program, f.event) for f in t.findings]) for t in b.tasks]
    for f in a.findings:
        assert Path(f.file).read_text() == (tmp_path / "b" / Path(f.file).name).read_text()


def test_fingerprint_is_invariant_under_time_translation():
    d = Driver(SETUPS["hv"], "v2", 1, make_alphabet())
    root = d.save()
    apply(d, "dl_far")
    now = fingerprint(d)
    d.restore(root)
    apply(d, "idle")
    apply(d, "dl_far")
    later = fingerprint(d)
    d.restore(root)
    apply(d, "dl_past")
    assert now == later
    assert fingerprint(d) != now


def test_canonical_table_covers_every_state_field():
    """A new field of an engine state class must be classified (else the fingerprint hashes it as is)."""
    from lazytsc.apic import ApicState
    from lazytsc.explore.canon import FIELDS
    from lazytsc.guest_cpu import CpuState
    from lazytsc.guest_kernel import KernelState
    from lazytsc.hazards import WantState
    from lazytsc.lapic_timer import TimerState
    from lazytsc.lazy_host import PvState
    from lazytsc.vcpu_run import RunState

    for cls in (TimerState, PvState, ApicState, RunState, CpuState, KernelState, WantState):
        assert set(cls.__slots__) == set(FIELDS[cls.__name__]), cls.__name__


def test_counterexample_files_are_ordinary_scenarios(tmp_path):
    report = search(tmp_path, depth=3)
    assert report.findings
    for f in report.findings:
        sc = load_scenario(f.file)
        assert sc.modes == ("classic", "lazy")
        bp = [b for b in sc.breakpoints if b.name.startswith("explore:")]
        assert len(bp) == 1 and bp[0].condition == f"index == {f.event}"
        lazy = Engine(sc, "lazy")
        lazy.run()
        assert lazy.log.event(f.event).kind_name == bp[0].kind
        classic = Engine(sc, "classic")
        classic.run()
        outcomes = evaluate(sc, {"lazy": run_results(lazy), "classic": run_results(classic)})
        assert outcomes and all(o.ok for o in outcomes)
    assert main(["check", *[f.file for f in report.findings]]) == 0


def test_every_finding_is_documented():
    from lazytsc.explore import invariants

    for name in FINDINGS:
        assert f"`{name}`" in invariants.__doc__


def test_summary_says_how_deep_each_invariant_holds(tmp_path):
    report = search(tmp_path, depth=2, variants=("v3",))
    lines = report.summary_lines()
    assert "V3: livelock holds up to depth 2, " in "\n".join(lines)
    assert any(line.startswith("V3: known hang after INIT without re-registration") for line in lines)


# ---- alphabet files and the CLI -----------------------------------------------------------------------
def test_alphabet_file(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text('format = 1\nletters = ["dl_far", "init", "idle"]\n[params.dl_far]\ndelta_cycles = 4000\n')
    a = load_alphabet(path)
    assert a.names == ("dl_far", "init", "idle") and a.params_of("dl_far") == {"delta_cycles": 4000}


@pytest.mark.parametrize(
    "text, where",
    [
        ('letters = ["dl_far", "warp"]\n', ":1: letters: letter names among"),
        ('letters = ["dl_far"]\n[params.dl_far]\ndelta_cycles = 3\n', ":3: params.dl_far.delta_cycles: an integer >= 8, a multiple of 8"),
        ('letters = ["dl_far"]\n[params.dl_far]\nstep = 8\n', ":3: params.dl_far.step: a parameter of dl_far (delta_cycles)"),
        ("depth = 3\n", ":1: depth: one of format, letters, params"),
        ("letters = [\n", ": valid TOML"),
    ],
)
def test_bad_alphabet_names_file_line_field(tmp_path, capsys, text, where):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as err:
        load_alphabet(path)
    assert str(err.value).startswith(str(path)) and where in str(err.value)
    assert main(["explore", "--alphabet", str(path), "-o", str(tmp_path / "out")]) == 2
    err_text = capsys.readouterr().err
    assert err_text.startswith(f"lazytsc: error: {path}") and err_text.count("\n") == 1


def test_cli_json_and_exit_status(tmp_path, capsys):
    path = tmp_path / "a.toml"
    path.write_text('letters = ["dl_far", "dl_above", "wait", "idle"]\n')
    assert main(["explore", "--variant", "v3", "--depth", "2", "--setup", "hv", "--jobs", "1", "--alphabet", str(path), "-o", str(tmp_path / "o"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tasks"][0]["depth_done"] == 2 and out["tasks"][0]["findings"] == []
    assert "V3: lost_timer holds up to depth 2" in out["summary"][0]
    assert main(["explore", "--variant", "v2", "--depth", "2", "--setup", "hv", "--jobs", "1", "-o", str(tmp_path / "p")]) == 1
    text = capsys.readouterr().out
    assert "counterexamples (open with lazytsc-gui FILE" in text


@pytest.mark.parametrize("args", [["--depth", "0"], ["--setup", "kvm"], ["--time-limit", "-1"], ["--vcpus", "3"]])
def test_cli_bad_arguments(args, capsys):
    assert main(["explore", *args]) == 2
    assert "lazytsc: error:" in capsys.readouterr().err


def test_letters_document_themselves():
    for letter in LETTERS.values():
        assert letter.doc and letter.scope in ("guest", "host", "time")


def _replays(d: Driver, setup: str, variant: str, nvcpus: int = 1) -> None:
    from lazytsc.explore.program import script_text
    from lazytsc.explore.setups import header_text
    from lazytsc.scenario import parse_scenario

    n = len(d.engine.log)
    text = header_text(SETUPS[setup], variant, nvcpus, d.t, "lazy", "replay", "") + script_text(d.program, nvcpus)
    e = Engine(parse_scenario(text, "replay.toml"), "lazy")
    e.run()

    def rows(log) -> list[tuple[int, ...]]:
        return [(ev.time, ev.vcpu, ev.kind, ev.a, ev.b) for ev in (log.event(i) for i in range(min(n, len(log))))]

    assert rows(d.engine.log) == rows(e.log), [s.letter for s in d.program]


def test_a_letter_on_the_instant_of_a_host_timer_expiry_runs_first():
    """In a scenario, an operation queued at construction runs before any action the run
    schedules at the same instant (here the hrtimer callback at 16 us): the explorer's must too."""
    d = Driver(SETUPS["sw"], "v2", 1, make_alphabet())
    for name, params in (("dl_far", {"delta_cycles": 12400}), ("tsc_fwd", {"jump_cycles": 8}), ("dl_far", {"delta_cycles": 7208}), ("tsc_back", {"jump_cycles": 1608})):
        letter = LETTERS[name]
        d.apply(letter, 0, letter.build(d, 0, params), params)
    log = d.engine.log
    at_16us = [log.event(i).kind_name for i in range(len(log)) if log.event(i).time == 16_000]
    assert at_16us[:2] == ["tsc_write", "timer_fire"]
    _replays(d, "sw", "v2")


def test_programs_replay_event_for_event_as_scenario_files():
    """The explorer drives the engine through script operations it hands over as it goes; the same
    program written as a scenario (all operations queued at construction) must log the same events."""
    import random

    rng = random.Random(7)
    # Deltas that put host timer expiries exactly on later letters' instants (the order of
    # same-instant actions is what could differ), and ordinary ones.
    deltas = [8, 400, 2000, 4400, 8400, 12400, 80000]
    for setup in ("hv", "sw", "sw-posted", "hv-noapicv"):
        for variant in ("v2", "v3"):
            d = Driver(SETUPS[setup], variant, 1, make_alphabet())
            root = d.save()
            for _ in range(8):
                d.restore(root)
                for _ in range(5):
                    moves = d.moves()
                    letter, v, _move = moves[rng.randrange(len(moves))]
                    params = {p.name: rng.choice(deltas) for p in letter.params if p.name != "gap_ns"}
                    params = {**letter.defaults(), **params}
                    move = letter.build(d, v, params)
                    if move is None:
                        continue
                    d.apply(letter, v, move, params)
                    if d.stuck:
                        break
                _replays(d, setup, variant)


def test_two_vcpus_have_letters_each_and_replay_as_scenarios(tmp_path):
    """With two vCPUs every letter exists per vCPU and `ipi` targets the other one; random
    two-vCPU programs replay event for event as scenario files, and a two-vCPU search finds
    the INIT hang on one vCPU with a verified two-vCPU counterexample."""
    import random

    d = Driver(SETUPS["hv"], "v2", 2, make_alphabet())
    assert {(letter.name, v) for letter, v, _ in d.moves()} >= {("dl_far", 0), ("dl_far", 1), ("ipi", 0), ("ipi", 1), ("init", 1)}
    rng = random.Random(11)
    root = d.save()
    for _ in range(4):
        d.restore(root)
        for _ in range(5):
            moves = d.moves()
            letter, v, move = moves[rng.randrange(len(moves))]
            d.apply(letter, v, move)
            if d.stuck:
                break
        _replays(d, "hv", "v2", 2)
    report = explore(Options(variants=("v2",), setups=("hv",), vcpus=2, depth=2, jobs=1, out_dir=str(tmp_path / "cx")))
    hang = by_key(report)[("known_hang", "after init")]
    assert hang.program in (["dl_far@0(delta_cycles=6000)", "init@0"], ["dl_far@1(delta_cycles=6000)", "init@1"]) and hang.verified
    assert len(load_scenario(hang.file).run.vcpus) == 2


def test_docs_name_every_letter_and_finding_and_their_examples_still_hold():
    root = Path(__file__).resolve().parents[1]
    text = (root / "docs" / "explore.md").read_text(encoding="utf-8")
    for name in list(LETTERS) + list(FINDINGS):
        assert f"`{name}`" in text, name
    examples = sorted((root / "docs" / "explore").glob("*.toml"))
    assert examples
    assert main(["check", *map(str, examples)]) == 0
