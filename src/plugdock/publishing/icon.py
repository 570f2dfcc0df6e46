"""An icon of the plugin's own: a symmetric 5x5 pattern and a colour, both derived from ``author/name``.

The Marketplace refuses template icons; a scaffold that writes this one (``plugdock init`` may call
``plugin_icon_svg``) passes that check, and every plugin gets a different one. Same input, same bytes."""

from __future__ import annotations

import colorsys
import hashlib

SIZE = 5
CELL = 16
MARGIN = 10


def plugin_icon_svg(author: str, name: str) -> str:
    digest = hashlib.sha256(f"{author}/{name}".encode()).digest()
    hue = digest[0] / 255
    red, green, blue = (round(c * 255) for c in colorsys.hls_to_rgb(hue, 0.45, 0.65))
    colour = f"#{red:02x}{green:02x}{blue:02x}"
    bits = int.from_bytes(digest[1:5], "big")
    cells: list[tuple[int, int]] = []
    half = (SIZE + 1) // 2
    for row in range(SIZE):
        for col in range(half):
            if bits >> (row * half + col) & 1:
                cells.append((row, col))
                if col != SIZE - 1 - col:
                    cells.append((row, SIZE - 1 - col))
    if len(cells) < 4:  # never an almost empty square
        cells += [(2, 2), (1, 1), (1, 3), (3, 1), (3, 3)]
    side = SIZE * CELL + 2 * MARGIN
    rects = "".join(f'<rect x="{MARGIN + c * CELL}" y="{MARGIN + r * CELL}" width="{CELL}" height="{CELL}"/>'
                    for r, c in sorted(set(cells)))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {side} {side}" width="{side}" height="{side}">'
            f'<rect width="{side}" height="{side}" rx="18" fill="#f8fafc"/><g fill="{colour}">{rects}</g></svg>\n')
