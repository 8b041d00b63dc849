"""Draw docs/architecture.svg from the Mermaid picture in docs/architecture.md.

The Mermaid block is the source (GitHub renders it); this script draws the same nodes,
labels and edges as a plain SVG that reads offline. Only the positions are kept here.

    python docs/architecture_svg.py            # rewrite docs/architecture.svg
    python docs/architecture_svg.py --check    # exit 1 when the committed SVG is not current

``tests/docs/test_docs_paths.py`` runs the check.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
SOURCE = DOCS / "architecture.md"
TARGET = DOCS / "architecture.svg"

ROW, TOP, LINE, PAD, CHAR = 100, 60, 17, 12, 7.0
PIPE, LEFT, RIGHT, PRED = 570, 330, 810, 1380
#: Where each node's centre goes: (x, row).
POSITIONS: dict[str, tuple[float, int]] = {
    "corpus": (PIPE, 0), "parse": (PIPE, 1), "manifest": (PIPE, 2),
    "extract": (LEFT, 3), "split": (RIGHT, 3), "features": (LEFT, 4), "splitfile": (RIGHT, 4),
    "join": (PIPE, 5), "train": (PIPE, 6), "modeldir": (PIPE, 7), "evaluate": (PIPE, 8),
    "metrics": (PIPE, 9), "report": (PIPE, 10), "html": (PIPE, 11),
    "predictpy": (PRED, 3), "cli": (PRED, 4), "extras": (PRED + 230, 5),
    "inference": (PRED, 6), "answer": (PRED, 7),
}
#: Edges that would cross other boxes go around them through these points.
WAYPOINTS: dict[tuple[str, str], list[tuple[float, float]]] = {
    ("manifest", "report"): [(40, TOP + 2 * ROW), (40, TOP + 10 * ROW)],
    ("join", "evaluate"): [(110, TOP + 5 * ROW), (110, TOP + 8 * ROW)],
    ("modeldir", "report"): [(1010, TOP + 7 * ROW + 12), (1010, TOP + 10 * ROW)],
}

NODE_RE = re.compile(r'^\s*(\w+)(\[\(|\[)"(.*)"(\)\]|\])\s*$')
EDGE_RE = re.compile(r'\s*(-->|-\.->)(?:\|"([^"]*)"\|)?\s*')


def parse(markdown: str):
    """``(nodes, edges)`` of the first Mermaid block: nodes ``{id: (lines, is_data)}``,
    edges ``[(a, b, dashed, label)]``."""
    block = re.search(r"```mermaid\n(.*?)```", markdown, re.S).group(1)
    nodes: dict[str, tuple[list[str], bool]] = {}
    edges: list[tuple[str, str, bool, str]] = []
    for line in block.splitlines()[1:]:
        if not line.strip():
            continue
        node = NODE_RE.match(line)
        if node:
            lines = [html.unescape(part) for part in node.group(3).split("<br/>")]
            nodes[node.group(1)] = (lines, node.group(2) == "[(")
            continue
        parts = EDGE_RE.split(line.strip())
        names, arrows = parts[0::3], list(zip(parts[1::3], parts[2::3], strict=True))
        for (a, b), (arrow, label) in zip(zip(names, names[1:], strict=False), arrows,
                                          strict=True):
            edges.append((a, b, arrow == "-.->", label or ""))
    return nodes, edges


def box(nodes, name):
    lines, _ = nodes[name]
    x, row = POSITIONS[name]
    w = max(len(s) for s in lines) * CHAR + 2 * PAD
    h = len(lines) * LINE + PAD
    return x - w / 2, TOP + row * ROW - h / 2, w, h


def clip(rect, towards):
    """The point where the line from the rectangle's centre to ``towards`` leaves it."""
    x, y, w, h = rect
    cx, cy = x + w / 2, y + h / 2
    dx, dy = towards[0] - cx, towards[1] - cy
    scale = min((w / 2) / abs(dx) if dx else 1e9, (h / 2) / abs(dy) if dy else 1e9)
    return cx + dx * scale, cy + dy * scale


def draw(nodes, edges) -> str:
    rects = {name: box(nodes, name) for name in nodes}
    width = max(x + w for x, _, w, _ in rects.values()) + 30
    height = max(y + h for _, y, _, h in rects.values()) + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="DejaVu Sans Mono, monospace" '
           'font-size="12">',
           "<title>SER workflow: from a corpus folder to the report and to predict.py"
           "</title>",
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
           'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
           'fill="#444"/></marker></defs>',
           '<rect width="100%" height="100%" fill="white"/>']
    for a, b, dashed, label in edges:
        ra, rb = rects[a], rects[b]
        centre_b = (rb[0] + rb[2] / 2, rb[1] + rb[3] / 2)
        centre_a = (ra[0] + ra[2] / 2, ra[1] + ra[3] / 2)
        via = WAYPOINTS.get((a, b), [])
        points = [clip(ra, via[0] if via else centre_b), *via,
                  clip(rb, via[-1] if via else centre_a)]
        path = " ".join(f"{x:.0f},{y:.0f}" for x, y in points)
        dash = ' stroke-dasharray="6,4"' if dashed else ""
        out.append(f'<polyline points="{path}" fill="none" stroke="#444" stroke-width="1.4"'
                   f'{dash} marker-end="url(#arrow)"/>')
        if label:
            (x0, y0), (x1, y1) = points[0], points[-1]
            out.append(f'<text x="{(x0 + x1) / 2:.0f}" y="{(y0 + y1) / 2 + 4:.0f}" '
                       'text-anchor="middle" fill="#444" stroke="white" stroke-width="5" '
                       f'paint-order="stroke">{html.escape(label)}</text>')
    for name, (lines, is_data) in nodes.items():
        x, y, w, h = rects[name]
        fill, stroke, radius = ("#fff6d5", "#b08a00", 14) if is_data else ("#e8f0fe", "#3b6fc4", 4)
        out.append(f'<rect x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}" '
                   f'rx="{radius}" fill="{fill}" stroke="{stroke}" stroke-width="1.2"/>')
        for i, text in enumerate(lines):
            weight = ' font-weight="bold"' if i == 0 else ""
            out.append(f'<text x="{x + w / 2:.0f}" y="{y + PAD / 2 + (i + 0.8) * LINE:.0f}" '
                       f'text-anchor="middle"{weight}>{html.escape(text)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def render() -> str:
    """The SVG of the Mermaid picture in docs/architecture.md."""
    return draw(*parse(SOURCE.read_text(encoding="utf-8")))


def main(argv: list[str]) -> int:
    svg = render()
    if "--check" in argv:
        current = TARGET.is_file() and TARGET.read_text(encoding="utf-8") == svg
        if not current:
            print(f"{TARGET} is not current: run python docs/architecture_svg.py")
        return 0 if current else 1
    TARGET.write_text(svg, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
