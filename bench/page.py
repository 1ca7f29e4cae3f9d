"""The report's blocks as a page: GitHub markdown (report.md) and one self-contained HTML file (report.html).

A block is ``(kind, content)``: h1/h2/h3, p (inline markdown), table (a DataFrame), list, img (a path
from the report's folder), open/close (a folded section). Both writers read the same blocks, so the
two files say the same thing.
"""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image


def _slug(title: str) -> str:
    """The anchor GitHub gives a heading, so the contents link in report.md and report.html alike."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def contents(blocks) -> list[str]:
    return [f"[{c}](#{_slug(c)})" for kind, c in blocks if kind == "h2"]


def _markdown_cell(value):
    """A table cell as GitHub's markdown reads it: a `|` inside would end the cell."""
    return value.replace("|", "\\|") if isinstance(value, str) else value


def _markdown_table(table: pd.DataFrame) -> str:
    """A GitHub table, unpadded (padding every cell to its column's widest would double the page)."""
    def cell(value) -> str:
        if isinstance(value, float):
            return "n/a" if np.isnan(value) else f"{value:.4g}"
        return str(_markdown_cell(value)).replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def markdown(blocks, root: Path) -> str:
    out = []
    for kind, content in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + content)
        elif kind == "p":
            out.append(content)
        elif kind == "table":
            out.append(_markdown_table(content))
        elif kind == "list":
            out.append("\n".join(f"- {item}" for item in content))
        elif kind == "img":
            out.append(f"![{Path(content).stem}]({content})")
        elif kind == "open":  # GitHub folds it as HTML does; the blank line after lets markdown resume inside
            out.append(f"<details><summary>{html.escape(content)}</summary>")
        elif kind == "close":
            out.append("</details>")
        out.append("")
    return "\n".join(out)


VERDICT_CLASS = {"held": "good", "same": "good", "yes": "good", "The framework changes nothing here": "good",
                 "It does not change which config to use": "good",
                 "not held": "bad", "differs": "bad", "no": "bad", "It changes which config to use": "bad",
                 "cannot tell": "unsure", "Cannot tell": "unsure", "not evaluated": "unsure", "inconclusive": "unsure",
                 "detectable": "unsure"}
_VERDICT = re.compile(r"(^|: |\*\*)(" + "|".join(sorted(map(re.escape, VERDICT_CLASS), key=len, reverse=True))
                      + r")(?=\*\*|\b)")


def _inline(text: str) -> str:
    """report.md's inline markup as HTML: `code`, **bold**, [text](link); verdict words coloured."""
    text = html.escape(str(text), quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = _VERDICT.sub(lambda m: f'{m[1]}<span class="v {VERDICT_CLASS[m[2]]}">{m[2]}</span>', text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])", r"<em>\1</em>", text)
    return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', text)


def _cell(value) -> str:
    if isinstance(value, float):
        return "n/a" if np.isnan(value) else f"{value:.4g}"  # as report.md's tables round them
    return _inline(value)


def _table_html(table: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in table.itertuples(index=False))
    return f'<table class="t"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


SHOWN_WIDTH = 1100  # px: the page's width; a figure embedded larger only weighs more


def _shown_size(path: Path) -> bytes:
    """A figure as the page shows it: at most SHOWN_WIDTH wide, in 256 colours (plots have few; an octree keeps a
    rare colour, such as one framework's markers, that median cut merges into its neighbour), so that
    report.html stays small enough to commit and mail."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        if image.width > SHOWN_WIDTH:
            image = image.resize((SHOWN_WIDTH, round(image.height * SHOWN_WIDTH / image.width)), Image.LANCZOS)
        buffer = io.BytesIO()
        image.quantize(256, method=Image.Quantize.FASTOCTREE).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


STYLE = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:auto;padding:1em;line-height:1.4;color:#222}"
         "h2{border-bottom:2px solid #ccc;padding-bottom:.2em;margin-top:2em}"
         "table.t{border-collapse:collapse;font-size:13px;margin:.5em 0}"
         "table.t td,table.t th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}"
         "table.t th{background:#f4f4f4}code{background:#f4f4f4;padding:0 3px}"
         ".v{font-weight:600;padding:0 3px;border-radius:3px}.good{background:#d9f2d9;color:#145214}"
         ".bad{background:#f9dcdc;color:#7a1010}.unsure{background:#fff1c2;color:#6b5200}"
         "img{max-width:100%}nav li{margin:.1em 0}p{margin:.45em 0}"
         "details{margin:.6em 0;border-top:1px solid #ddd}summary{cursor:pointer;font-weight:600;padding:.3em 0}")


def page_html(blocks, root: Path) -> str:
    body = []
    for kind, content in blocks:
        if kind in ("h1", "h2", "h3"):
            body.append(f'<{kind} id="{_slug(content)}">{html.escape(content)}</{kind}>')
        elif kind == "p":
            body.append(f"<p>{_inline(content)}</p>")
        elif kind == "table":
            body.append(_table_html(content))
        elif kind == "list":
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in content) + "</ul>")
        elif kind == "img":
            data = base64.b64encode(_shown_size(root / content)).decode()
            body.append(f'<figure><img alt="{html.escape(Path(content).stem)}" src="data:image/png;base64,{data}"></figure>')
        elif kind == "open":
            body.append(f"<details><summary>{html.escape(content)}</summary>")
        elif kind == "close":
            body.append("</details>")
    return (f"<!doctype html><html lang=en><meta charset=utf-8><title>lrbench report</title><style>{STYLE}</style>"
            f"<body>\n" + "\n".join(body) + "\n</body></html>\n")
