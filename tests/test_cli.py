"""The `minigrad` command as a user runs it."""
import subprocess
import sys
from html.parser import HTMLParser


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
    # Verdicts are read from the parsed table cells: the embedded images are base64 bytes, in
    # which any short word turns up by chance.
    tables = parse_tables(html)
    (gradchecks,) = [rows for header, rows in tables if header[-1:] == ["result"]]
    assert gradchecks and all(row[-1] == "pass" for row in gradchecks), gradchecks
    assert not any("FAIL" in cell for _, rows in tables for row in rows for cell in row)
    assert "with FAILURES" not in result.stdout
    assert (tmp_path / "digits_mlp_batch.npz").exists()
    assert "report.html" in result.stdout


class _TableCells(HTMLParser):
    """Collects the text of every <td>/<th> cell: tables of rows of cells."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None


def parse_tables(html: str) -> list:
    """[(header cells, body rows)] of every table in ``html``."""
    parser = _TableCells()
    parser.feed(html)
    return [(rows[0], rows[1:]) for rows in parser.tables if rows]
