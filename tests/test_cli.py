"""The `minigrad` command as a user runs it."""
import json
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
    # The step-through explorer is embedded (an iframe's srcdoc) and written next to the report.
    (page,) = _iframe_pages(html)
    steps = json.loads(_script_text(page, "steps-data"))
    assert len(steps) > 10 and {s["op"] for s in steps} >= {"Mean", "Var", "Sqrt"}
    assert _script_text((tmp_path / "bn_steps.html").read_text(), "steps-data")


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


class _Collect(HTMLParser):
    """The srcdoc of every <iframe>, and the text of the <script> with a given id."""

    def __init__(self, script_id=None):
        super().__init__()
        self.pages, self.script_id, self.scripts, self._in = [], script_id, [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "iframe" and "srcdoc" in attrs:
            self.pages.append(attrs["srcdoc"])
        self._in = tag == "script" and attrs.get("id") == self.script_id
        if self._in:
            self.scripts.append("")

    def handle_data(self, data):
        if self._in:
            self.scripts[-1] += data

    def handle_endtag(self, tag):
        self._in = False


def _iframe_pages(html: str) -> list:
    parser = _Collect()
    parser.feed(html)
    return parser.pages


def _script_text(html: str, script_id: str) -> str:
    parser = _Collect(script_id)
    parser.feed(html)
    (text,) = parser.scripts
    return text


def parse_tables(html: str) -> list:
    """[(header cells, body rows)] of every table in ``html``."""
    parser = _TableCells()
    parser.feed(html)
    return [(rows[0], rows[1:]) for rows in parser.tables if rows]
