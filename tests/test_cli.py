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


def test_demo_writes_a_self_contained_report(tmp_path):
    """`make demo`'s command, shortened: trains, checks, draws, runs the quick experiments."""
    result = run_cli("demo", "--epochs", "2", "--no-progress", "-o", str(tmp_path), timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    html = (tmp_path / "report.html").read_text()
    markdown = (tmp_path / "report.md").read_text()
    # Every figure is embedded: the training curves, the BatchNorm graph and six experiments.
    assert html.count("<img src='data:image/") >= 8
    assert "src='http" not in html and "src=\"http" not in html  # readable offline
    for section in ("Training", "checked by finite differences", "three paths", "claims"):
        assert section in html and section in markdown
    assert "FAIL" not in html
    assert (tmp_path / "digits_mlp_batch.npz").exists()
    assert "report.html" in result.stdout
