"""Exit accounting and causality (DESIGN.md section 3): every exit is counted once with
the seed's names, attributable to the event that caused it."""

from __future__ import annotations

from lazytsc.accounting import caused_by, summarize
from lazytsc.engine import Engine
from lazytsc.scenario import load_scenario
from lazytsc_testkit import SCENARIOS, events, run, scenario, script

HEAD = 'duration = "300us"\n[defaults]\nreprogram_jitter_cycles = 0\n'
OVERWRITE = (
    dict(at="10us", op="set_next_event", delta="100us"),
    dict(at="20us", op="set_next_event", delta="100us"),
)


def test_summary_counts_every_exit_event_once():
    e = run(load_scenario(SCENARIOS / "tcp_rr.toml"), "lazy")
    s = e.summary()
    exits = [ev for ev in e.log if ev.exit >= 0]
    assert s["exits"]["total"] == len(exits)
    for reason, count in s["exits"]["by_reason"].items():
        assert count == sum(1 for ev in exits if ev.exit_name == reason), reason
    for sub, count in s["exits"]["msr_write"].items():
        assert count == sum(1 for ev in exits if ev.exit_name == "msr-write" and ev.sub_name == sub), sub


def test_summary_of_a_prefix_equals_the_run_stopped_there():
    sc = load_scenario(SCENARIOS / "tcp_rr.toml")
    full = run(sc, "lazy")
    for n in (0, 1, 77, 1000, 5000):
        part = Engine(sc, "lazy")
        part.run(max_events=n)
        k = len(part.log)
        got = summarize(full.log, upto=k)
        want = summarize(part.log)
        assert got == want, n


def test_caused_by_follows_arm_fire_kick_rearm():
    """seed_overwrite, lazy: the first arm (10us) fires at 109us, kick re-arms pending,
    which fires at 149us and kick disarms: all caused by the first arm."""
    e = run(load_scenario(SCENARIOS / "seed_overwrite.toml"), "lazy")
    arm = events(e, "timer_arm")[0]
    chain = [e.log.event(int(i)) for i in caused_by(e.log, arm.index)]
    names = [(ev.time, ev.kind_name) for ev in chain]
    for item in [
        (10_000, "timer_arm"),
        (109_000, "timer_fire"),
        (109_000, "kick"),
        (109_000, "timer_arm"),
        (149_000, "timer_fire"),
        (149_000, "kick"),
    ]:
        assert item in names
    assert all(ev.time >= arm.time for ev in chain)


def test_caused_by_a_halted_expiry_includes_the_wake_kick_and_interrupt():
    ops = (*OVERWRITE, dict(at="30us", op="hlt"))
    e = run(HEAD + script(*ops), "lazy")
    fire = events(e, "timer_fire")[0]
    names = [e.log.event(int(i)).kind_name for i in caused_by(e.log, fire.index)]
    for kind in ("timer_fire", "kick_request", "wake", "kick", "guest_timer_irq", "spurious"):
        assert kind in names


def test_caused_by_a_running_expiry_includes_the_interrupt_and_its_exits():
    """Same as the halted case, on a running vCPU (hv path, V2, APICv): the preemption-timer
    exit, the kick's re-arm, the early interrupt it delivered (into the IRR by
    apic_timer_expired) and the guest's skipped reprogram are consequences of the expiry."""
    e = run(HEAD + script(*OVERWRITE), "lazy")
    fire = events(e, "timer_fire")[0]
    assert fire.exit_name == "preemption-timer"
    caused = [e.log.event(int(i)) for i in caused_by(e.log, fire.index)]
    names = [ev.kind_name for ev in caused]
    assert {"kick", "update", "timer_arm", "irq_accept", "guest_timer_irq", "spurious", "deadline_skip"} <= set(names)


def test_without_apicv_v2s_rearm_drops_the_expiry_it_caused():
    """No APICv: apic_timer_expired only latches; the kick's kvm_set_lapic_tscdeadline_msr
    (__start_apic_timer) zeroes it. The expiry's consequences hold no guest interrupt."""
    e = run(HEAD + "apicv = false\n" + script(*OVERWRITE), "lazy")
    fire = events(e, "timer_fire")[0]
    direct = [ev.kind_name for ev in e.log if ev.parent == fire.index]
    assert "timer_dropped" in direct and "irq_accept" not in direct
    # transitively the re-armed deadline's own (on-time) interrupt follows; nothing early
    caused = [e.log.event(int(i)) for i in caused_by(e.log, fire.index)]
    assert [ev.time for ev in caused if ev.kind_name == "guest_timer_irq"] == [120_000]
    assert events(e, "spurious") == []


def test_explicit_eoi_with_apicv_is_not_an_exit():
    e = run(HEAD + script(dict(at="10us", op="eoi")), "classic")
    (eoi,) = events(e, "wrmsr_eoi")
    assert eoi.exit == -1
    assert e.summary()["exits"]["total"] == 0


def test_explicit_eoi_without_apicv_is_an_msr_write():
    """x2APIC EOI without APICv is an intercepted WRMSR; apic_set_eoi finds nothing in
    service (-1) and clears nothing."""
    e = run(HEAD + "apicv = false\n" + script(dict(at="10us", op="eoi")), "classic")
    (eoi,) = events(e, "wrmsr_eoi")
    assert (eoi.exit_name, eoi.sub_name, eoi.a) == ("msr-write", "apic-eoi", -1)


def test_xapic_tmcct_read_is_not_an_msr_read():
    e = run(HEAD + "x2apic = false\n" + script(dict(at="10us", op="read", reg="tmcct", label="c")), "classic")
    (read,) = events(e, "lapic_read")
    assert read.exit >= 0 and read.exit_name != "msr-read"


def test_xapic_register_writes_are_not_msr_writes():
    ops = (dict(at="10us", op="write", reg="lvtt", value=0x400EC), dict(at="20us", op="ipi", dest=0))
    e = run(HEAD + "x2apic = false\n" + script(*ops), "classic")
    s = e.summary()
    assert s["exits"]["by_reason"]["msr-write"] == 0
    assert s["exits"]["by_reason"]["other"] == 2
    # the TSC-deadline MSR is an MSR in either APIC mode
    e = run(HEAD + "x2apic = false\n" + script(dict(at="10us", op="set_next_event", delta="5us")), "classic")
    assert e.summary()["exits"]["msr_write"]["tsc-deadline"] == 1


def test_tsc_deadline_msr_read_is_an_msr_read_exit():
    e = run(HEAD + script(dict(at="10us", op="read", reg="tsc_deadline", label="d")), "classic")
    (read,) = events(e, "lapic_read")
    assert (read.exit_name, read.a) == ("msr-read", 0x6E0)


def test_seed_table_says_n_a_for_figures_a_recording_does_not_have():
    """A trace's summary has no host-side timer figures (no apic_timer_expired in it): the
    side-by-side table shows n/a there, not 0, and keeps the rows both sides have."""
    from lazytsc.accounting import format_seed_table

    e = Engine(scenario('duration = "2ms"\n[workload]\nkind = "periodic_tick"\nhz = 1000\n'), "lazy")
    e.run()
    simulated = e.summary()
    recorded = {key: simulated[key] for key in ("events", "sim_time_ns", "exits")}
    recorded["timer"] = {k: simulated["timer"][k] for k in ("deadline_requests", "msr_writes", "interrupts")}
    text = format_seed_table({"recorded": recorded, "lazy": simulated})
    row = next(line for line in text.splitlines() if line.startswith("timer: host_expiries"))
    assert row.split()[2] == "n/a" and row.split()[3] == f"{simulated['timer']['host_expiries']:,}"
    assert any(line.startswith("timer: interrupts ") for line in text.splitlines())
