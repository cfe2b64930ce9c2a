"""Figures for reports and the Dagster UI (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

if TYPE_CHECKING:  # a type only: drawing needs no torch
    from verification.divergence import ParameterDistances


def loss_curves_png(curves: dict[str, tuple[float, ...]], title: str = "training loss") -> bytes:
    """PNG of one loss curve per solver (steps where a strategy skipped work are gaps)."""
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    for name, losses in curves.items():
        steps = range(1, len(losses) + 1)
        ax.plot(steps, [v if math.isfinite(v) else float("nan") for v in losses], label=name, lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return figure_png(fig)


def divergence_png(distances: Mapping[str, ParameterDistances], reference: str) -> bytes:
    """PNG of each solver's parameter distance to ``reference`` per checkpoint, log scale: a
    solver's line starts where it left the reference's trace (a dotted line marks that step)."""
    fig, ax = plt.subplots(figsize=(7, 3.4), dpi=100)
    for index, (name, d) in enumerate(distances.items()):
        color = f"C{index}"
        if d.divergent_steps is None:  # nothing to draw on a log scale: say so in the legend
            ax.plot([], [], color=color, label=f"{name}: identical to {reference}")
            continue
        after, first = d.divergent_steps
        shown = [(s, v) for s, v in zip(d.steps, d.distances, strict=True) if s >= first]
        ax.plot([s for s, _ in shown], [v if v > 0 else float("nan") for _, v in shown], marker="o", ms=3,
                lw=1.2, color=color, label=f"{name}: diverged in steps {after}–{first}")
        ax.axvline(first, color=color, ls=":", lw=1)
    ax.set_yscale("log")
    if not ax.has_data() or all(d.first_divergent_step is None for d in distances.values()):
        ax.set_ylim(1e-8, 1)
    last = max((d.steps[-1] for d in distances.values() if d.steps), default=1)
    ax.set_xlim(0, last)
    ax.set_xlabel("step (checkpoints)")
    ax.set_ylabel("L2 distance of parameters")
    ax.set_title(f"distance to {reference}'s trace per checkpoint")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, which="major", alpha=0.3)
    return figure_png(fig)


def figure_png(fig) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def png_markdown(png: bytes, alt: str) -> str:
    """Inline a PNG into markdown (how the Dagster UI shows images in metadata)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
