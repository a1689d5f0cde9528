"""Draw the two loops of Kotar & Tuckute (2025) as a box-and-arrow diagram.

    python book/figures/draw_loops.py      # writes two_loops.svg and two_loops.png next to this file

The figure is drawn at the width the book shows it (:data:`WIDTH` inches = 672 px, the text
column at a 1280-px window), in inches, so that a font size in points is its size in pixels on
the page: every text is at least 10 pt, i.e. at least 10 px when shown. The output is
deterministic (fixed SVG hash salt, no dates in the metadata), so re-running it leaves the
committed files unchanged.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

HERE = Path(__file__).resolve().parent

#: figure size in inches; 9.33 in x 72 = 672 px, the width the book's text column shows it at
WIDTH, HEIGHT = 9.33, 6.2
#: font sizes (points = px at the book's width)
BODY, SMALL, HEAD = 10.5, 10, 11.5

OUTER = "#dbe8f5"
OUTER_EDGE = "#3b6ea5"
CONN = "#f6e3c6"
CONN_EDGE = "#b07020"
INNER = "#e2f0dc"
INNER_EDGE = "#4a8a3a"
EVAL = "#eeeeee"
EVAL_EDGE = "#555555"


def box(ax, x, y, w, h, text, face, edge, size=BODY, weight="normal"):
    """A rounded box whose lower-left corner is (x, y) (inches); returns (x, y, w, h)."""
    ax.add_patch(
        FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                       facecolor=face, edgecolor=edge, linewidth=1.2)
    )
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, weight=weight,
            linespacing=1.25)
    return (x, y, w, h)


def panel(ax, top, bottom, edge, title):
    """A dashed frame from ``bottom`` to ``top`` with a bold title inside its top edge."""
    ax.add_patch(FancyBboxPatch((0.08, bottom), WIDTH - 0.16, top - bottom, boxstyle="round,pad=0.02,rounding_size=0.1",
                                facecolor="none", edgecolor=edge, linewidth=1.0, linestyle="--"))
    ax.text(0.22, top - 0.2, title, fontsize=HEAD, weight="bold", color=edge, va="center")


def arrow(ax, start, end, color="#333333", lw=1.3):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color=color, linewidth=lw,
                                 shrinkA=0, shrinkB=0))


def draw(ax) -> None:
    ax.set_xlim(0, WIDTH)
    ax.set_ylim(0, HEIGHT)
    ax.axis("off")

    # ------------------------------------------------------------------ outer loop (evolution)
    top = HEIGHT - 0.06
    panel(ax, top, top - 2.3, OUTER_EDGE, "Outer loop: evolution (6 generations, large corpus, Muon + AdamW)")
    gw, gh, gap, x0 = 0.86, 0.62, 0.3, 0.25
    gy = top - 1.2
    gens = []
    for g in range(6):
        x = x0 + g * (gw + gap)
        init = "dense" if g == 0 else f"{100 * 0.8 ** g:.1f}".removesuffix(".0") + " %"
        gens.append(box(ax, x, gy, gw, gh, f"Gen {g}\n{init}", OUTER, OUTER_EDGE))
    for a, b in zip(gens, gens[1:]):
        arrow(ax, (a[0] + a[2] + 0.02, gy + gh / 2), (b[0] - 0.02, gy + gh / 2), color=OUTER_EDGE)
    cx, cw, ch = 7.05, 2.05, 0.95
    cy = gy + gh / 2 - ch / 2
    box(ax, cx, cy, cw, ch, "Model connectome\nmask + signs\ndensity $0.8^6$ = 26.2 %", CONN, CONN_EDGE, weight="bold")
    last = gens[-1]
    arrow(ax, (last[0] + last[2] + 0.02, gy + gh / 2), (cx - 0.02, gy + gh / 2), color=CONN_EDGE)
    ax.text(x0, gy - 0.2,
            "Gen g trains at density $0.8^g$ (percentages: share of weights kept).\n"
            "Each arrow: per tensor, prune 20 % of the remaining weights (smallest |w|),\n"
            "reset every survivor to sign(w) \u00d7 0.02 (pruned weights exactly 0),\n"
            "and train again with the mask fixed. The last arrow is the final pruning.",
            ha="left", va="top", fontsize=SMALL, style="italic", color="#1f3f66", linespacing=1.3)

    # ------------------------------------------------------------------ inner loop (development)
    itop = top - 2.75
    panel(ax, itop, itop - 1.5, INNER_EDGE, "Inner loop: development (fresh models, small corpus, AdamW, seeds)")
    iw, ih = 2.8, 0.98
    iy = itop - 0.4 - ih
    xs = [0.25, 3.265, 6.28]
    inner = [
        "NoConnectome\ndense, standard init\n(the same architecture)",
        "RandomConnectome\nas many per tensor as the\nconnectome, random positions\nand signs, \u00d7 0.02; mask fixed",
        "Connectome\nthe connectome's signs \u00d7 0.02\non its mask, 0 elsewhere;\nmask fixed",
    ]
    for text, x in zip(inner, xs):
        box(ax, x, iy, iw, ih, text, INNER, INNER_EDGE)
    # hand-over: the connectome -> the Connectome model (straight down)
    hx = cx + cw / 2
    arrow(ax, (hx, cy - 0.02), (hx, iy + ih + 0.02), color=CONN_EDGE, lw=1.6)
    ax.text(hx - 0.1, (top - 2.3 + itop) / 2, "handed to the inner loop", ha="right", va="center", fontsize=SMALL,
            color=CONN_EDGE, weight="bold")
    # the random control takes its per-tensor counts from the connectome
    arrow(ax, (xs[2] - 0.02, iy + ih / 2), (xs[1] + iw + 0.02, iy + ih / 2), color="#777777", lw=1.0)

    # ------------------------------------------------------------------ evaluations
    etop = itop - 1.7
    panel(ax, etop, 0.06, EVAL_EDGE, "Evaluations (every inner-loop model \u00d7 seed, every task)")
    ew, eh = 2.8, 0.98
    ey = etop - 0.4 - eh
    evals = [
        "NLP\nHellaSwag, MMLU (zero-shot);\nvalidation loss; BLiMP\n(added here, not in the paper)",
        "Behaviour\nsurprisal vs. reading times\n(Natural Stories, Futrell2018)",
        "Brain\nfMRI, language network\n(Tuckute2024); language-\nselective units",
    ]
    for text, x in zip(evals, xs):
        box(ax, x, ey, ew, eh, text, EVAL, EVAL_EDGE)
    for x in xs:
        arrow(ax, (x + iw / 2, iy - 0.02), (x + iw / 2, etop + 0.02), color=EVAL_EDGE, lw=1.1)


def main() -> None:
    plt.rcParams["svg.hashsalt"] = "connectome-two-loops"
    plt.rcParams["svg.fonttype"] = "path"
    fig = plt.figure(figsize=(WIDTH, HEIGHT))
    ax = fig.add_axes((0, 0, 1, 1))
    draw(ax)
    fig.savefig(HERE / "two_loops.svg", metadata={"Date": None, "Creator": None})
    fig.savefig(HERE / "two_loops.png", dpi=144, metadata={"Software": None})
    plt.close(fig)


if __name__ == "__main__":
    main()
