"""`--output` onto what is already there (links, device nodes, pipes, read-only files), full disks,
SIGTERM during a write, and stdout on a full device."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest
from builders import assert_one_line_error, invoke

from multispin_cli.cli.app import _warning_line
from multispin_cli.documents.output import write_atomic
from multispin_cli.errors import InputError

HAS_DEV_FULL = os.path.exists("/dev/full")


def _plan_to(write_profile, target, fmt="toml"):
    return invoke("plan", write_profile(), "--format", fmt, "--output", target)


def test_a_symbolic_link_is_followed_and_stays_a_link(write_profile, tmp_path):
    real = tmp_path / "real.toml"
    real.write_text("old")
    link = tmp_path / "link.toml"
    link.symlink_to(real.name)
    result = _plan_to(write_profile, link)
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == real.name
    assert "[homogeneous]" in real.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.toml", "profile.toml", "real.toml"]


def test_a_dangling_link_creates_the_file_it_points_at(tmp_path):
    link = tmp_path / "link.txt"
    link.symlink_to("made.txt")
    write_atomic(link, "hello")
    assert link.is_symlink() and (tmp_path / "made.txt").read_text() == "hello"


def test_a_device_node_is_written_into_not_replaced(write_profile, tmp_path):
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a copy of /dev/null
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device node here: {exc}")
    result = _plan_to(write_profile, node)
    assert result.exit_code == 0, result.stderr
    assert stat.S_ISCHR(node.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null", "profile.toml"]


@pytest.mark.skipif(not HAS_DEV_FULL, reason="no /dev/full on this system")
def test_a_full_device_is_one_clear_error(write_profile):
    result = _plan_to(write_profile, "/dev/full")
    assert_one_line_error(result, "No space left on device")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_read_only_file_is_refused_and_kept(write_profile, tmp_path):
    target = tmp_path / "plan.toml"
    target.write_text("keep me")
    target.chmod(0o444)
    result = _plan_to(write_profile, target)
    assert_one_line_error(result, "read-only")
    assert target.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.toml", "profile.toml"]


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    target = tmp_path / "plan.toml"
    target.write_text("old")
    target.chmod(0o600)
    write_atomic(target, "new")
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_named_pipe_is_written_into_when_someone_reads_it(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    deadline = time.monotonic() + 10
    while True:  # the reader may not have opened its end yet
        try:
            write_atomic(fifo, "through the pipe")
            break
        except InputError as exc:
            assert "no reader" in str(exc)
            assert time.monotonic() < deadline
            time.sleep(0.01)
    reader.join(10)
    assert got == [b"through the pipe"] and stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_named_pipe_without_a_reader_is_refused_at_once(write_profile, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = _plan_to(write_profile, fifo)
    assert_one_line_error(result, "named pipe with no reader")


def test_a_socket_is_refused(tmp_path):
    import socket

    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        with pytest.raises(InputError, match="socket"):
            write_atomic(path, "x")


SLOW_WRITER = """
import os, sys, time
os.fsync = lambda fd: time.sleep(60)  # hold the temporary file open long enough to be signalled
from multispin_cli.documents.output import write_atomic
write_atomic(sys.argv[1], "x" * 1000)
"""


def test_sigterm_during_a_write_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "out.toml"
    target.write_text("old")
    with subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(target)], stderr=subprocess.PIPE) as child:
        try:
            deadline = time.monotonic() + 60
            while not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):
                assert child.poll() is None and time.monotonic() < deadline, child.stderr.read()
                time.sleep(0.01)
            child.send_signal(signal.SIGTERM)
            assert child.wait(30) == -signal.SIGTERM
        finally:
            child.kill()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.toml"]
    assert target.read_text() == "old"


@pytest.mark.skipif(not HAS_DEV_FULL, reason="no /dev/full on this system")
@pytest.mark.parametrize("fmt", ["json", "table"])
def test_stdout_on_a_full_device_is_one_clear_error(write_profile, fmt):
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "multispin_cli", "plan", str(write_profile()), "-f", fmt],
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0], done.stderr
    assert lines[0].startswith("multispin: error: cannot write")


def test_a_stray_warning_is_one_line(capsys):
    _warning_line(RuntimeWarning("invalid value encountered in sqrt"), RuntimeWarning, "split.py", 1)
    err = capsys.readouterr().err
    assert err == "multispin: warning: RuntimeWarning: invalid value encountered in sqrt (please report it)\n"


def test_the_console_script_installs_the_one_line_warning():
    code = ("import sys, warnings; from multispin_cli.cli import main; sys.argv = ['multispin', '--version']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\nwarnings.warn('x', RuntimeWarning)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stderr == "multispin: warning: RuntimeWarning: x (please report it)\n"
