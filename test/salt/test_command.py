"""``utils.command.run``, the way the execution module runs its firewall commands, against real
processes (small shell scripts standing in for the tools): argv as given and no shell, the script
on stdin, stdin closed without one, the minion's environment with ``LC_ALL=C`` and without
``NOTIFY_SOCKET``, exit codes and signals, undecodable output, a command that cannot start, and
the timeout that kills a hung command."""

import os
import subprocess
import sys
import time

import pytest


def tool(tmp_path, name, body):
    """An executable ``tmp_path/name`` running the shell ``body``; returns its path."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
    path.chmod(0o755)
    return str(path)


def test_arguments_stdin_and_exit_code(utils, tmp_path):
    path = tool(tmp_path, "fake-restore", 'echo "args=$*"; cat; echo "to stderr" >&2; exit 3')
    res = utils["command"].run(["ipset", "restore", "$(touch x); y"], "add s 10.0.0.1\n", executable=path)
    assert res == {
        "retcode": 3,
        "stdout": "args=restore $(touch x); y\nadd s 10.0.0.1\n",
        "stderr": "to stderr\n",
    }
    assert not (tmp_path / "x").exists() and not os.path.exists("x"), "no shell ever sees the arguments"


def test_the_program_sees_argv0_as_given_while_the_looked_up_path_runs(utils):
    """``iptables-restore`` and friends are one multi-call binary that dispatches on ``argv[0]``."""
    argv = ["iptables-restore", "-c", "import sys; print(sys.orig_argv[0])"]
    assert utils["command"].run(argv, executable=sys.executable)["stdout"] == "iptables-restore\n"


def test_without_a_script_stdin_is_closed(utils, tmp_path):
    path = tool(tmp_path, "fake-save", "cat; echo done")
    started = time.monotonic()
    assert utils["command"].run(["ipset", "save"], executable=path, timeout=20) == {
        "retcode": 0,
        "stdout": "done\n",
        "stderr": "",
    }
    assert time.monotonic() - started < 20


def test_environment_is_the_minions_with_lc_all_c(utils, tmp_path, monkeypatch):
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    monkeypatch.setenv("KSB_TEST_INHERITED", "yes")
    body = 'echo "LC_ALL=$LC_ALL notify=${NOTIFY_SOCKET-unset} inherited=$KSB_TEST_INHERITED"'
    path = tool(tmp_path, "fake-env", body)
    out = utils["command"].run(["nft", "list"], executable=path)["stdout"]
    assert out == "LC_ALL=C notify=unset inherited=yes\n"
    assert os.environ["LC_ALL"] == "de_DE.UTF-8", "the minion's own environment is not changed"


def test_undecodable_output_is_replaced_not_raised(utils, tmp_path):
    path = tool(tmp_path, "fake-bytes", r"printf 'a\377b'; printf '\376' >&2; exit 1")
    assert utils["command"].run(["nft", "-f", "-"], "", executable=path) == {
        "retcode": 1,
        "stdout": "a\ufffdb",
        "stderr": "\ufffd",
    }


def test_a_command_killed_by_a_signal_has_a_negative_retcode(utils, tmp_path):
    path = tool(tmp_path, "fake-crash", "kill -SEGV $$")
    assert utils["command"].run(["iptables-restore", "--noflush"], "", executable=path)["retcode"] == -11


def test_a_command_that_cannot_start_raises_oserror(utils, tmp_path):
    with pytest.raises(FileNotFoundError):
        utils["command"].run(["ipset", "save"], executable=str(tmp_path / "absent"))
    (tmp_path / "not-executable").write_text("#!/bin/sh\n", encoding="utf-8")
    with pytest.raises(PermissionError):
        utils["command"].run(["ipset", "save"], executable=str(tmp_path / "not-executable"))


def test_a_hung_command_is_killed_at_the_timeout(utils, tmp_path):
    pid_file = tmp_path / "pid"
    path = tool(tmp_path, "fake-hang", f"echo $$ > {pid_file}; exec sleep 600")
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        utils["command"].run(["nft", "-f", "-"], "flush ruleset\n", executable=path, timeout=1)
    assert time.monotonic() - started < 60
    pid = int(pid_file.read_text(encoding="utf-8"))
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped, not left running


def test_the_timeout_is_long_enough_for_the_largest_lists(utils):
    assert 30 <= utils["command"].TIMEOUT_SECONDS <= 300


def test_which_searches_path_then_salts_fallback_directories(utils, tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    for directory in (first, second):
        directory.mkdir()
        tool(directory, "ipset", "exit 0")
    (first / "nft").write_text("not executable\n", encoding="utf-8")
    tool(second, "nft", "exit 0")
    monkeypatch.setenv("PATH", f"{first}:{second}")
    which = utils["command"].which
    assert which("ipset") == str(first / "ipset"), "PATH order"
    assert which("nft") == str(second / "nft"), "a file that is not executable is skipped"
    assert which("no-such-firewall-tool") is None
    sh = which("sh")
    assert sh is not None and os.path.dirname(sh) in utils["command"].FALLBACK_PATH, "found outside PATH"
    tool(first, "ksb-cwd-only-tool", "exit 0")
    monkeypatch.chdir(first)
    monkeypatch.setenv("PATH", f":{second}")
    assert which("ksb-cwd-only-tool") is None, "the working directory is not searched"


@pytest.mark.parametrize("name", ["ipset", "iptables-save", "ip6tables-restore", "nft", "sh", "no-such-firewall-tool"])
@pytest.mark.parametrize(
    "path", ["/usr/local/bin:/usr/bin:/bin", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin"]
)
def test_which_finds_what_salts_which_finds(utils, monkeypatch, name, path):
    import salt.utils.path  # pylint: disable=import-outside-toplevel

    monkeypatch.setenv("PATH", path)
    assert utils["command"].which(name) == salt.utils.path.which(name)
