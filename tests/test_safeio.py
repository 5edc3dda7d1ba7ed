"""lazytsc.safeio: regular files only, with a byte cap; never blocks on a FIFO, never reads /dev/zero whole."""

from __future__ import annotations

import os
import socket
import threading

import pytest
from lazytsc.safeio import (
    RefusedFile,
    open_regular,
    read_capped,
    read_scenario_bytes,
    scenario_limit,
)


def test_regular_file_is_read(tmp_path):
    p = tmp_path / "a.toml"
    p.write_bytes(b"format = 1\n")
    assert read_capped(p, 100) == b"format = 1\n"
    with open_regular(p) as fh:
        assert fh.read() == b"format = 1\n"


def test_fifo_is_refused_at_once_even_with_a_writer_waiting(tmp_path):
    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    with pytest.raises(RefusedFile) as info:
        read_capped(fifo, 100)
    assert info.value.reason == "a regular file (this is a FIFO (named pipe))"
    assert isinstance(info.value, OSError) and info.value.strerror == info.value.reason


def test_fifo_swapped_in_after_the_stat_is_caught_on_the_descriptor(tmp_path, monkeypatch):
    """The path is checked again on the open descriptor, opened non-blocking."""
    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: real_stat(tmp_path) if str(p) == str(fifo) else real_stat(p, *a, **k))
    done = threading.Event()
    result = {}

    def attempt():
        try:
            open_regular(fifo)
        except OSError as exc:
            result["exc"] = exc
        done.set()

    threading.Thread(target=attempt, daemon=True).start()
    assert done.wait(10), "open_regular blocked on a FIFO"
    assert "FIFO" in str(result["exc"]) or "directory" in str(result["exc"])


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_devices_are_refused(device):
    with pytest.raises(RefusedFile, match="character device"):
        read_capped(device, 100)


def test_symlink_to_a_device_is_refused(tmp_path):
    link = tmp_path / "x.toml"
    link.symlink_to("/dev/zero")
    with pytest.raises(RefusedFile, match="character device"):
        read_capped(link, 1 << 30)


def test_directory_and_socket_are_refused(tmp_path):
    with pytest.raises(RefusedFile, match="directory"):
        read_capped(tmp_path, 100)
    sock_path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock_path))
        with pytest.raises(RefusedFile, match="socket"):
            read_capped(sock_path, 100)


def test_size_cap_by_stat_and_by_reading(tmp_path):
    p = tmp_path / "big"
    p.write_bytes(b"x" * 101)
    with pytest.raises(RefusedFile, match=r"at most 100 bytes \(101 bytes, larger than the limit"):
        read_capped(p, 100)
    # a regular file whose size stat reports as 0 but that has content (/proc): capped by reading
    status = "/proc/self/status"
    if os.path.exists(status):
        assert os.stat(status).st_size == 0
        with pytest.raises(RefusedFile, match="at most 10 bytes"):
            read_capped(status, 10)


def test_missing_file_is_a_plain_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_capped(tmp_path / "nope", 10)


def test_scenario_limit_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("LAZYTSC_MAX_SCENARIO_MB", raising=False)
    assert scenario_limit() == 16 << 20
    monkeypatch.setenv("LAZYTSC_MAX_SCENARIO_MB", "0.001")
    p = tmp_path / "s.toml"
    p.write_bytes(b"#" * 2000)
    with pytest.raises(RefusedFile, match="LAZYTSC_MAX_SCENARIO_MB"):
        read_scenario_bytes(p)
    monkeypatch.setenv("LAZYTSC_MAX_SCENARIO_MB", "nonsense")
    assert scenario_limit() == 16 << 20
