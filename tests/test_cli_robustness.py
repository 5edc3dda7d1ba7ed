"""The CLI on hostile input and hostile output: one line, exit 2, no traceback, no hang, no data loss.

Reproducers from the fuzz run (all rebuilt here): `events -o` on a full disk destroyed
the existing file; `-o` into a read-only, missing or directory path gave a traceback;
`events | head` printed a BrokenPipeError traceback; a FIFO given as a scenario hung
forever; `/dev/zero` (or a `.toml` symlink to it) was read whole; file names with a
newline or an ANSI escape were echoed raw; huge-but-valid scenarios ran until memory
was gone.
"""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
import time

import pytest
from lazytsc import runner
from lazytsc.cli import main
from lazytsc.engine import Engine
from lazytsc.runner import RunLimitExceeded, TerminalProgress, run_to_end
from lazytsc.scenario import load_scenario
from lazytsc_testkit import LAZYTSC, REPO, SCENARIOS, scenario

HUGE_PERIODIC = (
    'format = 1\nduration = "1s"\n[host]\nmin_timer_period_us = 0\n'
    '[[script]]\nat = 0\nop = "write"\nreg = "lvtt"\nvalue = 0x200ec\n'
    '[[script]]\nat = 0\nop = "write"\nreg = "tmict"\nvalue = 1\n'
)


def cli(*args: str, cwd=None, timeout: float = 60, env=None, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, str(LAZYTSC), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("lazytsc: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    return proc.stderr[len("lazytsc: error: ") : -1]


def leftovers(directory) -> list[str]:
    return [n for n in os.listdir(directory) if n.endswith(".tmp")]


@pytest.fixture
def open_tmp():
    """A directory every user can traverse (pytest's tmp_path sits under a 0700 directory)."""
    import tempfile

    path = tempfile.mkdtemp(prefix="lazytsc-perm-", dir="/tmp")
    os.chmod(path, 0o755)
    from pathlib import Path

    yield Path(path)
    for root, dirs, _files in os.walk(path):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
    shutil.rmtree(path, ignore_errors=True)


_DROP_ROOT = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")


def unprivileged() -> tuple[str, ...]:
    """A command prefix that drops root, so permission bits apply (root ignores them).

    The dropped user must be able to start `lazytsc` at all: a checkout inside a private
    directory (`mktemp -d` is 0700) is out of its reach, and then nothing can be tested.
    """
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permissions cannot be tested")
    probe = subprocess.run([*_DROP_ROOT, str(LAZYTSC), "--version"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"uid 65534 cannot start {LAZYTSC} (the checkout is in a private directory): {probe.stderr.strip()[:200]}")
    return _DROP_ROOT


# ---- events -o ---------------------------------------------------------------------------------
def test_events_output_is_written_atomically_and_equals_stdout(tmp_path):
    out = tmp_path / "e.csv"
    assert main(["events", "seed_overwrite", "-o", str(out)]) == 0
    piped = cli("events", "seed_overwrite")
    assert piped.returncode == 0 and out.read_text() == piped.stdout
    assert leftovers(tmp_path) == []


def test_events_output_on_a_full_disk_keeps_the_existing_file(tmp_path):
    """A 128 kB tmpfs in a private mount namespace: a real ENOSPC, no root needed."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = (
        f"mount -t tmpfs -o size=128k tmpfs {mnt} || exit 77; "
        f"printf 'precious\\n' > {mnt}/e.csv; "
        f"{LAZYTSC} events tcp_rr -o {mnt}/e.csv; echo rc=$?; "
        f"cat {mnt}/e.csv; ls -a {mnt}"
    )
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=120)
    if proc.returncode == 77 or "unshare:" in proc.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    lines = proc.stdout.splitlines()
    assert "rc=2" in lines, proc.stdout + proc.stderr
    assert lines[lines.index("rc=2") + 1] == "precious"  # the existing file is intact
    assert not any(n.endswith(".tmp") for n in lines)  # no temp file left on the full disk
    err = [line for line in proc.stderr.splitlines() if line.startswith("lazytsc:")]
    assert len(err) == 1 and "No space left on device" in err[0] and "not changed" in err[0]
    assert "Traceback" not in proc.stderr


def test_events_output_into_a_read_only_directory(open_tmp):
    ro = open_tmp / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    msg = one_error_line(cli("events", "seed_overwrite", "-o", str(ro / "e.csv"), prefix=unprivileged()))
    assert msg == f"{ro / 'e.csv'}: a writable output file (cannot create files in {ro})"
    assert os.listdir(ro) == []


def test_events_output_over_a_read_only_file_in_a_read_only_directory(open_tmp):
    ro = open_tmp / "ro"
    ro.mkdir()
    (ro / "e.csv").write_text("old\n")
    os.chmod(ro / "e.csv", 0o444)
    os.chmod(ro, 0o555)
    msg = one_error_line(cli("events", "seed_overwrite", "-o", str(ro / "e.csv"), prefix=unprivileged()))
    assert msg.startswith(f"{ro / 'e.csv'}: a writable output file (Permission denied")
    assert (ro / "e.csv").read_text() == "old\n"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("missing/dir/e.csv", "an output file in an existing directory"),
        (".", "a file name for the output (this is a directory)"),
    ],
)
def test_events_output_into_missing_or_directory_path(tmp_path, target, expected, capsys):
    path = str(tmp_path / target)
    assert main(["events", "seed_overwrite", "-o", path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err


def test_events_into_a_closed_pipe_exits_quietly():
    """`lazytsc events ... | head`: no BrokenPipeError traceback, the exit status of SIGPIPE."""
    for args in ("events tcp_rr", "events tcp_rr --format json", "run tcp_rr --json"):
        proc = subprocess.run(
            f"{LAZYTSC} {args} | head -c 100 >/dev/null; echo ${{PIPESTATUS[0]}} >&2",
            shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=120,
        )
        assert proc.stderr.strip() in ("141", "0"), proc.stderr  # 0 only if all fitted in the pipe


# ---- huge-but-valid runs: progress and a limit -------------------------------------------------
def test_huge_run_is_refused_with_the_stated_limit(tmp_path):
    path = tmp_path / "huge.toml"
    path.write_text(HUGE_PERIODIC)
    start = time.monotonic()
    msg = one_error_line(cli("run", str(path), "--max-events", "200000"))
    assert msg.startswith(f"{path}: the classic run reached the limit of 200,000 events (~8.0 MB of event log) at ")
    assert msg.endswith("raise it with --max-events N, or 0 for no limit")
    assert time.monotonic() - start < 50


def test_default_limit_is_printed_and_projected_early(monkeypatch):
    """A run that would need far more than the limit stops once the rate shows it."""
    monkeypatch.setattr(runner, "_PROJECT_AFTER_EVENTS", 20_000)
    sc = scenario(HUGE_PERIODIC)
    engine = Engine(sc, "classic")
    with pytest.raises(RunLimitExceeded) as info:
        run_to_end(engine, sc.run.duration_ns, 100_000, chunk=10_000)
    text = str(info.value)
    assert "would log about" in text and "over the limit of 100,000 events" in text
    assert len(engine.log) < 100_000


def test_a_scenario_that_declares_its_size_raises_the_default_limit(monkeypatch, tmp_path, capsys):
    """`max_events` in a scenario (tcp_rr_full: ~65 M events) lifts the default limit for its
    runs, so `lazytsc check resources/scenarios/*.toml` runs it; `--max-events` still wins."""
    monkeypatch.setattr(runner, "DEFAULT_MAX_EVENTS", 20)
    text = (SCENARIOS / "seed_overwrite.toml").read_text()
    plain = tmp_path / "plain.toml"
    plain.write_text(text)
    declared = tmp_path / "declared.toml"
    declared.write_text(text.replace("\nduration", "\nmax_events = 1_000\nduration", 1))
    assert load_scenario(declared).max_events == 1_000
    assert main(["run", str(plain)]) == 2
    assert "reached the limit of 20 events" in capsys.readouterr().err
    assert main(["run", str(declared)]) == 0
    assert main(["check", str(declared)]) == 0
    capsys.readouterr()
    assert main(["run", str(declared), "--max-events", "10"]) == 2
    assert "reached the limit of 10 events" in capsys.readouterr().err
    assert runner.event_limit(None, 0) == 20 and runner.event_limit(0, 1_000) == 0


def test_tcp_rr_full_declares_the_events_it_logs():
    assert load_scenario(SCENARIOS / "tcp_rr_full.toml").max_events >= 65_000_000


def test_help_states_the_default_limit(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "(default 10,000,000, about 400 MB; 0: no limit)" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("name", ["tcp_rr", "random_reprogram"])
def test_chunked_run_logs_the_same_events_as_one_run(name):
    sc = load_scenario(SCENARIOS / f"{name}.toml")
    whole = Engine(sc, "lazy")
    whole.run()
    chunked = Engine(sc, "lazy")
    run_to_end(chunked, sc.run.duration_ns, None, chunk=777)
    assert chunked.log.digest() == whole.log.digest()


def test_progress_only_on_a_terminal(tmp_path):
    """stderr a pipe: nothing but errors. stderr a TTY: a progress line with ETA, erased after."""
    piped = cli("run", "seed_overwrite")
    assert piped.returncode == 0 and piped.stderr == ""
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([str(LAZYTSC), "run", "seed_overwrite"], stdout=subprocess.PIPE, stderr=slave, timeout=60)
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    tty = b"".join(chunks).decode()
    assert proc.returncode == 0
    assert "classic: 100.0% of 400 us simulated" in tty and tty.endswith("\r\x1b[K")
    assert b"\r" not in proc.stdout


def test_terminal_progress_shows_eta():
    class Tty:
        def __init__(self):
            self.text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            pass

    out = Tty()
    show = TerminalProgress(out, "demo", interval_s=0)
    show(runner.RunProgress("lazy", 250_000_000, 1_000_000_000, 123_456, 3.0))
    assert out.text == "\r\x1b[Kdemo lazy:  25.0% of 1 s simulated, 123,456 events, ETA 9s"
    show.clear()
    assert out.text.endswith("\r\x1b[K")


# ---- hostile scenario files --------------------------------------------------------------------
def test_fifo_as_scenario_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    msg = one_error_line(cli("run", str(fifo), timeout=30))
    assert msg == f"{fifo}: a regular file (this is a FIFO (named pipe))"


@pytest.mark.parametrize("special", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_device_as_scenario_is_refused(special):
    msg = one_error_line(cli("check", special, timeout=30))
    assert msg == f"{special}: a regular file (this is a character device)"


def test_toml_symlink_to_dev_zero_is_refused(tmp_path):
    link = tmp_path / "zero.toml"
    link.symlink_to("/dev/zero")
    msg = one_error_line(cli("run", str(link), timeout=30))
    assert msg == f"{link}: a regular file (this is a character device)"


def test_directory_as_scenario(tmp_path):
    d = tmp_path / "dir.toml"
    d.mkdir()
    assert one_error_line(cli("run", str(d))) == f"{d}: a regular file (this is a directory)"


def test_huge_file_is_refused_with_the_limit_and_the_limit_can_be_raised(tmp_path):
    big = tmp_path / "big.toml"
    with open(big, "wb") as fh:
        fh.write(b"format = 1\n# padding\n")
        fh.truncate(17 << 20)  # sparse: 17 MiB of NUL bytes after a valid start
    msg = one_error_line(cli("run", str(big), timeout=30))
    assert msg == f"{big}: a file of at most 16 MiB (17 MiB, larger than the limit; set LAZYTSC_MAX_SCENARIO_MB to raise it)"
    env = {**os.environ, "LAZYTSC_MAX_SCENARIO_MB": "32"}
    msg = one_error_line(cli("run", str(big), timeout=60, env=env))
    assert msg.startswith(f"{big}:3: ")  # read now, and refused for what it holds (NUL bytes)


def test_unreadable_scenario(open_tmp):
    path = open_tmp / "secret.toml"
    path.write_text("format = 1\n")
    os.chmod(path, 0o000)
    msg = one_error_line(cli("run", str(path), prefix=unprivileged()))
    assert msg == f"{path}: a readable scenario file (Permission denied)"


def test_scenario_in_a_directory_that_cannot_be_entered(open_tmp):
    """`Path.exists()` raises PermissionError there: the lookup of built-in names must not."""
    locked = open_tmp / "locked"
    locked.mkdir()
    (locked / "s.toml").write_text("format = 1\n")
    os.chmod(locked, 0o000)
    for name in (str(locked / "s.toml"), str(locked / "s")):
        msg = one_error_line(cli("run", name, prefix=unprivileged()))
        assert msg == f"{name}: a readable scenario file (Permission denied)"
    msg = one_error_line(cli("events", "seed_overwrite", "-o", str(locked / "e.csv"), prefix=unprivileged()))
    assert msg == f"{locked / 'e.csv'}: a writable output file (Permission denied)"


def test_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes("\ufeffformat = 1\nduration = \"1ms\"\n".encode())
    assert cli("run", str(path)).returncode == 0


# ---- file names and keys that would drive the terminal -----------------------------------------
@pytest.mark.parametrize(
    ("name", "shown"),
    [("new\nline.toml", "'new\\nline.toml'"), ("\x1b[31mred.toml", "'\\x1b[31mred.toml'"), ("bidi\u202eeman.toml", "'bidi\\u202eeman.toml'")],
)
def test_file_names_with_control_characters_are_quoted(tmp_path, name, shown, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text("format = 2\n")
    assert main(["run", name]) == 2
    err = capsys.readouterr().err
    assert err == f"lazytsc: error: {shown}:1: format: a value <= 1 (got 2)\n"


def test_missing_file_with_escape_in_its_name(capsys):
    assert main(["run", "/nonexistent/\x1b]0;pwned\x07.toml"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and err.count("\n") == 1


def test_keys_with_control_characters_are_escaped(capsys, tmp_path):
    path = tmp_path / "k.toml"
    path.write_text('format = 1\n"\\u001b[2J" = 1\n')
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lazytsc: error: {path}:2: \\x1b[2J: unknown key") and "\x1b" not in err


def test_python_dash_m_on_a_fifo(tmp_path):
    fifo = tmp_path / "p.toml"
    os.mkfifo(fifo)
    proc = subprocess.run([sys.executable, "-m", "lazytsc", "check", str(fifo)], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert one_error_line(proc).endswith("a regular file (this is a FIFO (named pipe))")


def test_max_rate_64_vcpus_one_hour_is_refused_early(tmp_path, monkeypatch, capsys):
    """The reproducer: random_reprogram at its highest rate on 64 vCPUs for an hour."""
    monkeypatch.setattr(runner, "_PROJECT_AFTER_EVENTS", 50_000)
    path = tmp_path / "maxrate.toml"
    path.write_text('format = 1\nvcpus = 64\nduration = "3600s"\n[workload]\nkind = "random_reprogram"\nrate_hz = 10000000\n')
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lazytsc: error: {path}: the classic run would log about ") and err.count("\n") == 1
    assert "of 3,600 s simulated" in err and "over the limit of 10,000,000 events" in err


def test_820k_script_entries_are_refused_by_the_size_limit(tmp_path):
    """The reproducer: 820 k script entries (a 50 MB file) is refused at once, with the limit."""
    path = tmp_path / "script.toml"
    with open(path, "w") as fh:
        fh.write('format = 1\nduration = "1s"\n')
        for i in range(820_000):
            fh.write(f'[[script]]\nat = {i * 1000}\nop = "set_next_event"\ndelta = 100000\n')
    start = time.monotonic()
    msg = one_error_line(cli("check", str(path), timeout=60))
    assert msg.startswith(f"{path}: a file of at most 16 MiB (") and "LAZYTSC_MAX_SCENARIO_MB" in msg
    assert time.monotonic() - start < 30


def test_names_from_the_file_are_escaped_on_stdout(tmp_path, capsys):
    """A scenario from someone else must not drive the terminal through its name or an
    expectation's name (`run` and `check` print them)."""
    path = tmp_path / "evil.toml"
    path.write_text(
        'format = 1\nname = "\\u001b]0;owned\\u0007\\u001b[2J"\nduration = "100us"\n'
        '[[expect]]\nname = "\\u001b[31mred\\nsecond line"\nwhat = "timer.spurious"\nequals = 5\n'
    )
    assert main(["run", str(path)]) == 0
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b]0;owned\\x07\\x1b[2J" in out and "\\x1b[31mred\\nsecond line: expected 5" in out
