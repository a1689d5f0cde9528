"""Draw the two loops of Kotar & Tuckute (2025) as a box-and-arrow diagram.

    /work/venv/bin/python book/figures/draw_loops.py      # writes two_loops.svg and two_loops.png

The output is deterministic (fixed SVG hash salt, no dates in the metadata), so re-running it
leaves the committed files unchanged.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

HERE = Path(__file__).resolve().parent

OUTER = "#dbe8f5"
OUTER_EDGE = "#3b6ea5"
CONN = "#f6e3c6"
CONN_EDGE = "#b07020"
INNER = "#e2f0dc"
INNER_EDGE = "#4a8a3a"
EVAL = "#eeeeee"
EVAL_EDGE = "#555555"


def box(ax, x, y, w, h, text, face, edge, size=9, weight="normal"):
    """A rounded box whose lower-left corner is (x, y); returns its centre and size."""
    ax.add_patch(
        FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.12",
                       facecolor=face, edgecolor=edge, linewidth=1.2)
    )
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, weight=weight,
            linespacing=1.25)
    return (x, y, w, h)


def arrow(ax, start, end, color="#333333", style="-|>", lw=1.3, rad=0.0):
    ax.add_patch(
        FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, color=color, linewidth=lw,
                        connectionstyle=f"arc3,rad={rad}", shrinkA=0, shrinkB=0)
    )


def draw(ax) -> None:
    ax.set_xlim(0, 16)
    ax.set_ylim(0, 10)
    ax.axis("off")

    # ------------------------------------------------------------------ outer loop (evolution)
    ax.add_patch(FancyBboxPatch((0.15, 5.55), 15.7, 4.25, boxstyle="round,pad=0.02,rounding_size=0.2",
                                facecolor="none", edgecolor=OUTER_EDGE, linewidth=1.0, linestyle="--"))
    ax.text(0.4, 9.5, "Outer loop: evolution (6 generations on the large corpus; Muon + AdamW)",
            fontsize=10.5, weight="bold", color=OUTER_EDGE, va="center")

    gw, gh, gy, gap = 1.5, 1.55, 7.15, 0.6
    x0 = 0.45
    centres = []
    for g in range(6):
        x = x0 + g * (gw + gap)
        init = "dense,\nstandard init" if g == 0 else f"density\n$0.8^{g}$ = {0.8 ** g:.1%}"
        box(ax, x, gy, gw, gh, f"Gen {g}\ntrain\n{init}", OUTER, OUTER_EDGE, size=8.5)
        centres.append((x, gy, gw, gh))
    for g in range(5):
        x, y, w, h = centres[g]
        xn = centres[g + 1][0]
        arrow(ax, (x + w + 0.03, y + h / 2), (xn - 0.03, y + h / 2), color=OUTER_EDGE)
        ax.text((x + w + xn) / 2, y + h / 2 + 0.12, "prune\nreset", ha="center", va="bottom",
                fontsize=7, color=OUTER_EDGE, linespacing=1.1)
    ax.text(0.45, 6.55,
            "prune: per tensor, remove 20 % of the remaining weights (smallest |w|).   "
            "reset: every survivor \u2192 sign(w) \u00d7 0.02, pruned weights exactly 0; train again "
            "with the mask fixed.",
            ha="left", va="center", fontsize=8.5, style="italic", color="#1f3f66")
    # the last generation is pruned once more: that mask (+ signs) is the connectome
    x5, y5, w5, h5 = centres[5]
    cx, cy, cw, ch = 13.05, 6.95, 2.6, 1.95
    box(ax, cx, cy, cw, ch, "Model connectome\nmask + signs\n(density $0.8^6$ = 26.2 %)",
        CONN, CONN_EDGE, size=8.5, weight="bold")
    arrow(ax, (x5 + w5 + 0.03, y5 + h5 / 2), (cx - 0.03, y5 + h5 / 2), color=CONN_EDGE)
    ax.text((x5 + w5 + cx) / 2, y5 + h5 / 2 + 0.12, "prune", ha="center", va="bottom", fontsize=7,
            color=CONN_EDGE)

    # ------------------------------------------------------------------ inner loop (development)
    ax.add_patch(FancyBboxPatch((0.15, 2.85), 15.7, 2.5, boxstyle="round,pad=0.02,rounding_size=0.2",
                                facecolor="none", edgecolor=INNER_EDGE, linewidth=1.0, linestyle="--"))
    ax.text(0.4, 5.05, "Inner loop: development (fresh models, small corpus, AdamW; several seeds each)",
            fontsize=10.5, weight="bold", color=INNER_EDGE, va="center")
    iw, ih, iy = 4.55, 1.6, 3.1
    inner = [
        ("NoConnectome\ndense, standard init\n(the same architecture)", 0.55),
        ("RandomConnectome\nsame count per tensor, random positions\nand signs, \u00d7 0.02; mask fixed", 5.7),
        ("Connectome\nsign \u00d7 0.02 on the connectome's mask,\n0 elsewhere; mask fixed", 10.85),
    ]
    for text, x in inner:
        box(ax, x, iy, iw, ih, text, INNER, INNER_EDGE, size=8.5)
    # hand-over: connectome -> the Connectome model (straight down)
    hx = cx + cw / 2
    arrow(ax, (hx, cy - 0.03), (hx, iy + ih + 0.03), color=CONN_EDGE, lw=1.6)
    ax.text(hx + 0.12, 5.95, "handed to\nthe inner loop", ha="left", va="center", fontsize=8.5,
            color=CONN_EDGE)
    # the random control takes its per-tensor counts from the connectome
    arrow(ax, (10.85 - 0.03, iy + ih / 2), (5.7 + iw + 0.03, iy + ih / 2), color="#777777", lw=1.0)
    ax.text(10.53, iy + ih / 2 + 0.1, "counts", ha="center", va="bottom", fontsize=7, color="#555555")

    # ------------------------------------------------------------------ evaluations
    ax.add_patch(FancyBboxPatch((0.15, 0.1), 15.7, 2.35, boxstyle="round,pad=0.02,rounding_size=0.2",
                                facecolor="none", edgecolor=EVAL_EDGE, linewidth=1.0, linestyle="--"))
    ax.text(0.4, 2.17, "Evaluations (every inner-loop model \u00d7 seed, on every task)", fontsize=10.5,
            weight="bold", color=EVAL_EDGE, va="center")
    ew, eh, ey = 4.55, 1.45, 0.35
    evals = [
        ("NLP\nHellaSwag, MMLU (zero-shot); validation loss;\nBLiMP (added here, not in the paper)", 0.55),
        ("Behaviour\nsurprisal vs. reading times\n(Natural Stories, Futrell2018)", 5.7),
        ("Brain\nfMRI of the language network\n(Tuckute2024); language-selective units", 10.85),
    ]
    for text, x in evals:
        box(ax, x, ey, ew, eh, text, EVAL, EVAL_EDGE, size=8.5)
    for _, x in inner:
        arrow(ax, (x + iw / 2, iy - 0.03), (x + iw / 2, 2.47), color=EVAL_EDGE, lw=1.1)


def main() -> None:
    plt.rcParams["svg.hashsalt"] = "connectome-two-loops"
    plt.rcParams["svg.fonttype"] = "path"
    fig, ax = plt.subplots(figsize=(12.5, 7.8))
    fig.subplots_adjust(left=0.005, right=0.995, bottom=0.005, top=0.995)
    draw(ax)
    fig.savefig(HERE / "two_loops.svg", metadata={"Date": None, "Creator": None})
    fig.savefig(HERE / "two_loops.png", dpi=130, metadata={"Software": None})
    plt.close(fig)


if __name__ == "__main__":
    main()
