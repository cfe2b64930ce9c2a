"""Figures for reports and the Dagster UI (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import base64
import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


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
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def png_markdown(png: bytes, alt: str) -> str:
    """Inline a PNG into markdown (how the Dagster UI shows images in metadata)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
