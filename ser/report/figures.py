"""The report's figures, each returned as a ``data:image/png;base64,...`` URI.

Figures are drawn on :class:`matplotlib.figure.Figure` objects directly and
saved through the Agg renderer (no pyplot state), so building a report never
opens a window and does not change global matplotlib settings; the stage CLI
also selects the Agg backend.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ser.report.facts import model_name, protocol_name

#: Resolution of the embedded PNGs (modest: keeps the report small and fast to build).
DPI = 80

_RC = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial"],
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "figure.facecolor": "white",
}


@contextmanager
def _style(kind: str = "whitegrid") -> Iterator[None]:
    with mpl.rc_context(_RC), sns.axes_style(kind, rc=_RC):
        yield


def to_data_uri(fig: Figure, *, dpi: int = DPI) -> str:
    """Render ``fig`` as a PNG and return it as a base64 ``data:`` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def counts_heatmap(counts: pd.DataFrame) -> str:
    """Heatmap of clips per corpus (rows) x emotion (columns); absent classes blank."""
    with _style("white"):
        n_rows, n_cols = counts.shape
        fig = Figure(figsize=(1.6 + 0.85 * n_cols, 0.9 + 0.48 * n_rows))
        ax = fig.add_subplot()
        sns.heatmap(counts, annot=True, fmt="d", mask=counts.to_numpy() == 0, cmap="Blues",
                    cbar=False, linewidths=0.5, linecolor="#e5e7eb", ax=ax,
                    annot_kws={"fontsize": 9})
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(axis="x", rotation=30)
        ax.tick_params(axis="y", rotation=0)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
        ax.set_title("Clips per corpus and emotion (blank: the corpus lacks the class)",
                     loc="left")
        return to_data_uri(fig)


def uar_chart(rows: Sequence[dict[str, Any]], models: Sequence[str],
              protocols: Sequence[str]) -> str:
    """UAR with its 95 % CI per model (x) and protocol (colour), with chance levels.

    Parameters
    ----------
    rows
        Dicts with ``model``, ``protocol``, ``uar``, ``lo``, ``hi`` (CI bounds,
        may be ``None``) and ``chance``.
    """
    colours = sns.color_palette("colorblind", len(protocols))
    with _style():
        fig = Figure(figsize=(max(6.0, 1.5 * len(models) + 2.5), 3.6))
        ax = fig.add_subplot()
        width = 0.7 / max(len(protocols), 1)
        for j, protocol in enumerate(protocols):
            sub = [r for r in rows if r["protocol"] == protocol]
            offset = (j - (len(protocols) - 1) / 2) * width
            for r in sub:
                x = models.index(r["model"]) + offset
                if r["lo"] is not None and r["hi"] is not None:
                    err = [[r["uar"] - r["lo"]], [r["hi"] - r["uar"]]]
                    ax.errorbar(x, r["uar"], yerr=err, fmt="none", ecolor=colours[j],
                                elinewidth=1.6, capsize=3)
                ax.plot(x, r["uar"], "o", color=colours[j], markersize=7,
                        markeredgecolor="white")
            if sub:
                ax.plot([], [], "o", color=colours[j], label=protocol_name(protocol))
                chance = sub[0]["chance"]
                ax.axhline(chance, color=colours[j], linestyle=":", linewidth=1.2)
        ax.plot([], [], ":", color="grey", label="chance UAR (per protocol)")
        ax.set_xticks(range(len(models)), [model_name(m) for m in models])
        ax.set_xlim(-0.6, len(models) - 0.4)
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("UAR (95 % CI)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        ax.set_title("Unweighted average recall per model and protocol", loc="left")
        return to_data_uri(fig)


def _confusion_annotations(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    support = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(support > 0, counts / np.maximum(support, 1), np.nan)
    annot = np.empty(counts.shape, dtype=object)
    for (i, j), n in np.ndenumerate(counts):
        annot[i, j] = f"{share[i, j]:.2f}\n{n}" if n else ""
    return share, annot


def confusion_grid(runs: Sequence[dict[str, Any]], *, ncols: int = 3,
                   width: float = 13.5) -> str:
    """Row-normalised confusion heatmaps (colour: share of the row; text: share and count).

    Parameters
    ----------
    runs
        Dicts with ``model``, ``labels``, ``confusion`` (rows actual, columns
        predicted), ``uar`` and ``test_classes``.
    ncols
        Heatmaps per row of the grid.
    width
        Figure width in inches (13.5 in at :data:`DPI` fits the report's column
        without scaling the text down).
    """
    n = len(runs)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    n_labels = max(len(r["labels"]) for r in runs)
    fontsize = 8 if n_labels > 6 else 9
    left, right, top, bottom, wspace, hspace = 0.075, 0.995, 0.965, 0.09, 0.3, 0.36
    axis_w = width * (right - left) / (ncols + (ncols - 1) * wspace)
    height = axis_w * (nrows + (nrows - 1) * hspace) / (top - bottom)
    with _style("white"):
        # Fixed spacing instead of a layout engine: ~2x faster with hundreds of annotations.
        fig = Figure(figsize=(width, height))
        axes = fig.subplots(nrows, ncols, squeeze=False,
                            gridspec_kw={"wspace": wspace, "hspace": hspace, "left": left,
                                         "right": right, "top": top, "bottom": bottom})
        for ax, run in zip(axes.flat, runs, strict=False):
            counts = np.asarray(run["confusion"], dtype=int)
            share, annot = _confusion_annotations(counts)
            labels = list(run["labels"])
            rows = [lab if lab in run["test_classes"] else f"{lab} (none)" for lab in labels]
            sns.heatmap(pd.DataFrame(share, index=rows, columns=labels), annot=annot, fmt="",
                        cmap="Blues", vmin=0, vmax=1, cbar=False, square=True,
                        linewidths=0.5, linecolor="#e5e7eb", ax=ax,
                        annot_kws={"fontsize": fontsize})
            for text in ax.texts:  # inside the axes: no need to measure them for the layout
                text.set_in_layout(False)
            title = run.get("title") or model_name(run["model"])
            ax.set_title(f"{title}  (UAR {run['uar']:.3f})", fontsize=11, fontweight="bold")
            ax.set_xlabel("predicted", fontsize=9)
            ax.set_ylabel("actual", fontsize=9)
            ax.tick_params(axis="both", labelsize=9, length=0)
            ax.tick_params(axis="x", rotation=40)
            ax.tick_params(axis="y", rotation=0)
            for label in ax.get_xticklabels():
                label.set_horizontalalignment("right")
                label.set_rotation_mode("anchor")
        for ax in axes.flat[n:]:
            ax.set_visible(False)
        return to_data_uri(fig)


def training_curves(histories: dict[str, pd.DataFrame]) -> str:
    """LSTM loss and accuracy per epoch (training and validation), one row per protocol."""
    colours = sns.color_palette("colorblind", 2)
    with _style():
        fig = Figure(figsize=(10, 2.7 * len(histories)))
        axes = fig.subplots(len(histories), 2, squeeze=False,
                            gridspec_kw={"wspace": 0.18, "hspace": 0.55})
        for (protocol, hist), (ax_loss, ax_acc) in zip(histories.items(), axes, strict=True):
            epoch = hist["epoch"]
            best = int(hist.loc[hist["val_loss"].idxmin(), "epoch"])
            for ax, metric, title in ((ax_loss, "loss", "loss"),
                                      (ax_acc, "accuracy", "accuracy")):
                drawn = False
                for k, (col, label) in enumerate(((metric, "training"),
                                                  (f"val_{metric}", "validation"))):
                    if col in hist:
                        ax.plot(epoch, hist[col], color=colours[k], label=label, linewidth=1.6)
                        drawn = True
                if not drawn:
                    ax.text(0.5, 0.5, f"no {metric} in history.csv", ha="center",
                            transform=ax.transAxes)
                ax.axvline(best, color="grey", linestyle="--", linewidth=1)
                ax.set_title(f"{protocol_name(protocol)}: {title}", loc="left")
                ax.set_xlabel("epoch")
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                if drawn:
                    ax.legend(frameon=False)
            ax_acc.set_ylim(0, 1.02)
        return to_data_uri(fig)


def example_figure(y: np.ndarray, sr: int, *, n_fft: int, hop_length: int, n_mels: int,
                   fmin: float = 0.0, fmax: float | None = None, title: str = "") -> str:
    """Waveform above its log-mel spectrogram for one clip.

    Parameters
    ----------
    y, sr
        Mono samples and their rate.
    n_fft, hop_length, n_mels, fmin, fmax
        Spectrogram settings (the feature stage's, from ``params.yaml`` ``mfcc:``).
    title
        Optional title above the waveform (the report puts the caption in HTML).
    """
    import librosa
    import librosa.display

    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop_length,
                                         n_mels=n_mels, fmin=fmin, fmax=fmax)
    mel_db = librosa.power_to_db(mel, ref=np.max)
    with _style("white"):
        fig = Figure(figsize=(4.4, 3.3))
        ax_wave, ax_mel = fig.subplots(2, 1, sharex=True,
                                       gridspec_kw={"height_ratios": [1, 2], "hspace": 0.08})
        librosa.display.waveshow(y, sr=sr, ax=ax_wave, color="#3b6ea8", linewidth=0.6)
        ax_wave.set_title(title, loc="left", fontsize=9)
        ax_wave.set_ylabel("amplitude", fontsize=8)
        ax_wave.set_xlabel("")
        ax_wave.tick_params(labelsize=7)
        librosa.display.specshow(mel_db, sr=sr, hop_length=hop_length, x_axis="time",
                                 y_axis="mel", fmin=fmin, fmax=fmax or sr / 2, ax=ax_mel,
                                 cmap="magma")
        ax_mel.set_xlim(0, len(y) / sr)  # the waveform's and the frames' extents differ
        ax_mel.set_ylabel("Hz (mel)", fontsize=8)
        ax_mel.set_xlabel("time (s)", fontsize=8)
        ax_mel.tick_params(labelsize=7)
        return to_data_uri(fig)


def comparison_chart(rows: Sequence[dict[str, Any]], protocols: Sequence[str]) -> str:
    """Dot plot of UAR with 95 % CI whiskers: feature set x model (y) per protocol (panel).

    Plain runs are filled circles, speaker-normalised runs open diamonds
    (labelled transductive when they are), one row per feature set x model.

    Parameters
    ----------
    rows
        Dicts with ``protocol``, ``label``, ``variant`` (``plain`` or
        ``speaker-normalised``), ``uar``, ``lo``, ``hi`` (may be ``None``),
        ``chance`` and ``transductive``.
    """
    labels = list(dict.fromkeys(r["label"] for r in rows))
    protocols = [p for p in protocols if any(r["protocol"] == p for r in rows)]
    colours = {"plain": sns.color_palette("colorblind")[0],
               "speaker-normalised": sns.color_palette("colorblind")[3]}
    markers = {"plain": "o", "speaker-normalised": "D"}
    with _style():
        fig = Figure(figsize=(2.2 + 3.4 * len(protocols), 1.4 + 0.34 * len(labels)))
        axes = fig.subplots(1, len(protocols), sharey=True, squeeze=False)[0]
        for ax, protocol in zip(axes, protocols, strict=True):
            sub = [r for r in rows if r["protocol"] == protocol]
            for r in sub:
                y = labels.index(r["label"]) + (0.17 if r["variant"] != "plain" else -0.17)
                c = colours[r["variant"]]
                if r["lo"] is not None and r["hi"] is not None:
                    ax.errorbar(r["uar"], y, xerr=[[r["uar"] - r["lo"]], [r["hi"] - r["uar"]]],
                                fmt="none", ecolor=c, elinewidth=1.4, capsize=2.5)
                ax.plot(r["uar"], y, markers[r["variant"]], color=c, markersize=6.5,
                        markerfacecolor=c if r["variant"] == "plain" else "white",
                        markeredgewidth=1.6)
            chance = [r["chance"] for r in sub if r["chance"] == r["chance"]]
            if chance:
                ax.axvline(chance[0], color="grey", linestyle=":", linewidth=1.2)
            ax.set_xlim(0, 1)
            ax.set_title(protocol_name(protocol), loc="left")
            ax.set_xlabel("UAR (95 % CI)")
        axes[0].set_yticks(range(len(labels)), labels)
        axes[0].set_ylim(len(labels) - 0.5, -0.5)
        transductive = any(r["transductive"] for r in rows)
        handles = [axes[0].plot([], [], markers[v], color=colours[v],
                                markerfacecolor=colours[v] if v == "plain" else "white",
                                markeredgewidth=1.6, linestyle="none",
                                label=v + (" (transductive)" if v != "plain" and transductive
                                           else ""))[0]
                   for v in ("plain", "speaker-normalised")
                   if any(r["variant"] == v for r in rows)]
        handles.append(axes[0].plot([], [], ":", color="grey", label="chance UAR")[0])
        fig.tight_layout()
        fig.legend(handles=handles, loc="upper center", ncol=len(handles), frameon=False,
                   bbox_to_anchor=(0.5, 0.0))
        return to_data_uri(fig)
