"""The `minigrad` command as a user runs it."""
import subprocess
import sys


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "minigrad", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_help_lists_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "demo" in result.stdout


def test_unknown_command_fails_clearly():
    result = run_cli("no-such-command")
    assert result.returncode != 0
    assert "invalid choice" in result.stderr
