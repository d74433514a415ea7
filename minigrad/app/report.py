"""A small report builder: sections of text, tables, preformatted output and images, written
as one self-contained HTML file (images embedded, readable offline) and a Markdown copy."""
from __future__ import annotations

import base64
import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Report", "Section", "markdown_table", "format_cell"]

_MIME = {".png": "image/png", ".svg": "image/svg+xml"}

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 60rem;
       margin: 2rem auto; padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.8rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .9rem; display: block;
        overflow-x: auto; max-width: 100%; }
th, td { border: 1px solid #ccc; padding: .25rem .55rem; text-align: left; }
th { background: #f3f3f3; } td.number { text-align: right; white-space: nowrap; }
pre { background: #f7f7f7; padding: .7rem; white-space: pre-wrap; font-size: .8rem; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .85rem; color: #555; }
.verdict { padding: .4rem .7rem; border-left: 4px solid #888; background: #fafafa; }
.yes { border-color: #2a9d4b; } .no { border-color: #c0392b; } .mixed { border-color: #d99a00; }
"""


@dataclass
class Section:
    """One heading and its blocks, in order. Each block is (kind, payload)."""
    title: str
    blocks: list = field(default_factory=list)

    def text(self, paragraph: str) -> "Section":
        self.blocks.append(("text", paragraph))
        return self

    def verdict(self, text: str, reproduced) -> "Section":
        self.blocks.append(("verdict", (text, reproduced)))
        return self

    def table(self, columns, rows) -> "Section":
        self.blocks.append(("table", (list(columns), [list(r) for r in rows])))
        return self

    def pre(self, text: str) -> "Section":
        self.blocks.append(("pre", text.rstrip()))
        return self

    def image(self, path, caption: str = "") -> "Section":
        self.blocks.append(("image", (Path(path), caption)))
        return self

    def page(self, path, caption: str = "", height: int = 720) -> "Section":
        """A self-contained HTML page (the step-through explorer) shown inside the report: in
        an iframe's ``srcdoc``, so the report stays one offline file; Markdown links to it."""
        self.blocks.append(("page", (Path(path), caption, height)))
        return self


@dataclass
class Report:
    title: str
    intro: str = ""
    sections: list = field(default_factory=list)

    def section(self, title: str) -> Section:
        self.sections.append(Section(title))
        return self.sections[-1]

    def write(self, directory) -> tuple[Path, Path]:
        """Write ``report.html`` and ``report.md`` into ``directory``; return their paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        html_path, markdown_path = directory / "report.html", directory / "report.md"
        html_path.write_text(self.to_html(), encoding="utf-8")
        markdown_path.write_text(self.to_markdown(directory), encoding="utf-8")
        return html_path, markdown_path

    # -- HTML --------------------------------------------------------------------------------------

    def to_html(self) -> str:
        parts = [f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
                 f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
                 f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head><body>",
                 f"<h1>{html.escape(self.title)}</h1>"]
        if self.intro:
            parts.append(f"<p>{_inline(self.intro)}</p>")
        for section in self.sections:
            parts.append(f"<h2>{html.escape(section.title)}</h2>")
            parts += [_html_block(kind, payload) for kind, payload in section.blocks]
        parts.append("</body></html>\n")
        return "\n".join(parts)

    # -- Markdown ----------------------------------------------------------------------------------

    def to_markdown(self, directory: Path) -> str:
        lines = [f"# {self.title}", ""]
        if self.intro:
            lines += [self.intro, ""]
        for section in self.sections:
            lines += [f"## {section.title}", ""]
            for kind, payload in section.blocks:
                lines += _markdown_block(kind, payload, directory) + [""]
        return "\n".join(lines)


def format_cell(value) -> str:
    """How a table cell prints: None as a dash, floats to 4 significant digits."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _verdict_class(reproduced) -> str:
    return {True: "yes", False: "no"}.get(reproduced, "mixed")


def _inline(text: str) -> str:
    """Escape for HTML, with Markdown's `code` spans as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _html_cell(text: str) -> str:
    """A table cell; numbers (also 97.3%, 2.5x, 1.2e-08) are right-aligned to line up."""
    try:
        float(text.rstrip("%x"))
        number = True
    except ValueError:
        number = False
    return f"<td class='number'>{html.escape(text)}</td>" if number else \
        f"<td>{html.escape(text)}</td>"


def _html_block(kind, payload) -> str:
    if kind == "text":
        return f"<p>{_inline(payload)}</p>"
    if kind == "verdict":
        text, reproduced = payload
        return f"<p class='verdict {_verdict_class(reproduced)}'>{_inline(text)}</p>"
    if kind == "pre":
        return f"<pre>{html.escape(payload)}</pre>"
    if kind == "table":
        columns, rows = payload
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = "".join("<tr>" + "".join(_html_cell(format_cell(v)) for v in row) + "</tr>"
                       for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if kind == "image":
        path, caption = payload
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        mime = _MIME.get(path.suffix.lower(), "application/octet-stream")
        caption_html = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        return (f"<figure><img src='data:{mime};base64,{data}' alt='{html.escape(caption)}'>"
                f"{caption_html}</figure>")
    if kind == "page":
        path, caption, height = payload
        caption_html = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        return (f"<figure><iframe srcdoc='{html.escape(path.read_text(), quote=True)}' "
                f"title='{html.escape(caption)}' style='width:100%;height:{height}px;border:1px "
                f"solid #ccc'></iframe>{caption_html}</figure>")
    raise ValueError(f"report: unknown block kind {kind!r}")


def markdown_table(columns, rows) -> list[str]:
    """A Markdown table, one line per row (a "|" inside a cell, as in ||x||, is escaped)."""
    def cells(values):
        return "| " + " | ".join(value.replace("|", "\\|") for value in values) + " |"
    lines = [cells(str(c) for c in columns), "|" + "|".join("---" for _ in columns) + "|"]
    return lines + [cells(format_cell(v) for v in row) for row in rows]


def _markdown_block(kind, payload, directory: Path) -> list[str]:
    if kind == "text":
        return [payload]
    if kind == "verdict":
        text, _ = payload
        return [f"> {text}"]
    if kind == "pre":
        return ["```", payload, "```"]
    if kind == "table":
        return markdown_table(*payload)
    if kind == "page":
        path, caption, _ = payload
        return [f"[{caption or path.name}]({os.path.relpath(path, directory)})"]
    if kind == "image":
        path, caption = payload
        relative = os.path.relpath(path, directory)
        return [f"![{caption}]({relative})"]
    raise ValueError(f"report: unknown block kind {kind!r}")
