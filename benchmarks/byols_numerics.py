"""BYOL-S numerics: the project's embeddings (NumPy inference) against a PyTorch reference.

    .venv/bin/python benchmarks/byols_numerics.py --torch-python /tmp/torchenv/bin/python

1. Decodes ``--n-clips`` real clips (every k-th file of ``--dir``, sorted) the way the
   ``byols`` set does (16 kHz, the ``mfcc:`` trim / ``max_seconds`` of params.yaml) and
   writes the signals to a temporary ``.npz``.
2. Runs ``benchmarks/byols_torch_reference.py`` (an independent minimal PyTorch model and
   front end loading the ORIGINAL ``.pth``) with ``--torch-python`` on them.
3. Computes the project's embeddings of the same signals (front end
   :func:`ser.features.byols.byols_logmel`, the NumPy encoder on the shipped ``.npz``) and
   reports the largest absolute difference of the embeddings, also relative
   to their spread (the standard deviation of all reference embedding values), and the
   same for the log-mel front end.
4. Writes ``benchmarks/results/byols_numerics.json`` and the test fixture
   ``tests/data/byols_reference.npz`` (the reference embeddings of the first
   ``--fixture-clips`` clips with their names, relative to ``../shared/data``), which
   ``tests/unit/features/test_byols.py`` checks without PyTorch.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"
CHECKPOINT = SHARED / "models" / "byols" / \
    "default512_BYOLAs64x96-2107281850-e100-bs256-lr0003-rs42.pth"
FIXTURE = ROOT / "tests" / "data" / "byols_reference.npz"
RESULT = ROOT / "benchmarks" / "results" / "byols_numerics.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--torch-python", required=True,
                        help="python of a throwaway environment with torch installed")
    parser.add_argument("--dir", type=Path, default=SHARED / "data" / "ravdess")
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    parser.add_argument("--n-clips", type=int, default=20)
    parser.add_argument("--fixture-clips", type=int, default=3)
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    args = parser.parse_args(argv)

    from ser.audio import load_audio
    from ser.features import byols as B
    from ser.features.mfcc import read_seconds

    params = yaml.safe_load(args.params.read_text())
    mfcc = params["mfcc"]
    opts = B.byols_options({"options": params.get("byols") or {}})
    fp = B.signal_params(mfcc)
    files = sorted(args.dir.rglob("*.wav"))
    step = max(1, len(files) // args.n_clips)
    files = files[::step][:args.n_clips]
    signals = {}
    for i, f in enumerate(files):
        y, _ = load_audio(f, sr=B.SAMPLE_RATE, max_seconds=read_seconds(fp))
        signals[f"clip_{i:03d}"] = B.prepare_byols_signal(y, fp)
    with tempfile.TemporaryDirectory() as tmp:
        sig_path, ref_path = Path(tmp) / "signals.npz", Path(tmp) / "reference.npz"
        np.savez(sig_path, norm_mean=np.float64(opts["norm_mean"]),
                 norm_std=np.float64(opts["norm_std"]), **signals)
        subprocess.run([args.torch_python, str(ROOT / "benchmarks" / "byols_torch_reference.py"),
                        str(sig_path), str(args.checkpoint), str(ref_path)], check=True)
        with np.load(ref_path, allow_pickle=False) as ref:
            ref_emb = np.stack([ref[f"emb_{i:03d}"] for i in range(len(files))])
            ref_mel = [ref[f"logmel_{i:03d}"] for i in range(len(files))]
    mels = [B.byols_logmel(signals[f"clip_{i:03d}"]) for i in range(len(files))]
    encoder = B.get_encoder(None)
    ours = encoder.embed(mels, norm_mean=opts["norm_mean"], norm_std=opts["norm_std"])
    # the encoder alone on the reference's own log-mel input
    ours_on_ref = encoder.embed(ref_mel, norm_mean=opts["norm_mean"], norm_std=opts["norm_std"])
    spread = float(ref_emb.std())
    mel_diff = max(float(np.abs(a - b).max()) for a, b in zip(mels, ref_mel, strict=True))
    mel_spread = float(np.concatenate(ref_mel).std())
    diff = float(np.abs(ours - ref_emb).max())
    enc_diff = float(np.abs(ours_on_ref - ref_emb).max())
    out = {
        "date": dt.date.today().isoformat(),
        "command": "benchmarks/byols_numerics.py " + " ".join(argv or sys.argv[1:]),
        "n_clips": len(files), "clips": [str(f.relative_to(SHARED)) for f in files],
        "norm_mean": opts["norm_mean"], "norm_std": opts["norm_std"],
        "embedding_spread_sd": spread,
        "max_abs_diff_embedding": diff, "max_rel_diff_embedding": diff / spread,
        "max_abs_diff_encoder_on_reference_logmel": enc_diff,
        "max_rel_diff_encoder_on_reference_logmel": enc_diff / spread,
        "logmel_spread_sd": mel_spread, "max_abs_diff_logmel": mel_diff,
        "max_rel_diff_logmel": mel_diff / mel_spread,
    }
    RESULT.write_text(json.dumps(out, indent=1) + "\n")
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    k = args.fixture_clips
    np.savez(FIXTURE, names=np.array([str(f.relative_to(SHARED)) for f in files[:k]]),
             embeddings=ref_emb[:k].astype(np.float32),
             norm_mean=np.float64(opts["norm_mean"]), norm_std=np.float64(opts["norm_std"]),
             mfcc=np.array(json.dumps(mfcc, sort_keys=True)),
             spread=np.float64(spread))
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
