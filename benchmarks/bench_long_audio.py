"""Peak memory of feature extraction and predict.py on a 60-minute recording vs a 4-s clip.

Feature extraction decodes at most ``mfcc.max_seconds`` plus a trim margin
(``ser.features.mfcc.read_seconds``), so its memory should not grow with the
length of the file. Each measurement runs in a fresh Python process and reports
that process's peak resident set size (``ru_maxrss``); the "whole file" row
decodes and resamples everything first, as the code did before the limit.

Usage
-----
python benchmarks/bench_long_audio.py                      # 60-min file, 48 kHz mono
python benchmarks/bench_long_audio.py --minutes 10 --model models/speaker/mfcc/svm
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FEATURES = """
import json, resource, sys
from ser.config import load_params
from ser.features import features_from_file
mfcc = load_params(sys.argv[2])["mfcc"]
seq, summary = features_from_file(sys.argv[1], params=mfcc)
print(json.dumps({"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "frames": int(seq.shape[0])}))
"""

WHOLE = """
import json, resource, sys
from ser.audio import load_audio
from ser.config import load_params
from ser.features.mfcc import mfcc_sequence
mfcc = load_params(sys.argv[2])["mfcc"]
y, sr = load_audio(sys.argv[1], sr=mfcc["sample_rate"])          # the old way: all of it
seq = mfcc_sequence(y, sr, params=mfcc)
print(json.dumps({"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "frames": int(seq.shape[0])}))
"""

PREDICT = """
import json, resource, sys
from ser.classify import main
rc = main(["--file", sys.argv[1], "--model", sys.argv[3], "--json"])
print(json.dumps({"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rc": rc}))
"""


def write_long_wav(path: Path, *, minutes: float, sr: int) -> None:
    """A speech-like test signal (tones + noise), written block by block (flat memory)."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    total = int(round(minutes * 60 * sr))
    with sf.SoundFile(path, "w", samplerate=sr, channels=1, subtype="PCM_16") as fh:
        for i, start in enumerate(range(0, total, sr * 10)):
            n = min(sr * 10, total - start)
            t = np.arange(n) / sr
            y = 0.2 * np.sin(2 * np.pi * (150 + 10 * (i % 7)) * t) + 0.02 * rng.normal(size=n)
            fh.write(y.astype(np.float32))


def make_model(folder: Path, params_file: Path) -> Path:
    """A small SVC on random features with the project's card (memory does not depend on it)."""
    import numpy as np

    from ser.config import load_params
    from ser.features import feature_params_fingerprint
    from ser.features.mfcc import FeatureParams, summary_names
    from ser.models.classical import make_pipeline
    from ser.models.store import save_model

    mfcc = load_params(params_file)["mfcc"]
    fp = FeatureParams.from_mapping(mfcc)
    names = summary_names(fp.n_coeffs, deltas=fp.deltas)
    rng = np.random.default_rng(0)
    y = np.array(["angry", "happy", "neutral", "sad"] * 20)
    model = make_pipeline("svm", seed=0).fit(rng.normal(size=(len(y), len(names))), y)
    card = {"format": "skops", "labels": [str(c) for c in model.classes_], "model": "svm",
            "feature_params": feature_params_fingerprint(mfcc), "feature_columns": names}
    save_model(folder, model, card)
    return folder


def measure(code: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=ROOT, check=False)
    if proc.returncode not in (0,):
        raise SystemExit(f"measurement failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0, help="long file length")
    parser.add_argument("--sr", type=int, default=48000, help="sample rate of the test files")
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--model", default=None,
                        help="model folder for predict (default: a small SVC made here)")
    parser.add_argument("--skip-whole", action="store_true",
                        help="do not measure the decode-everything baseline")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-long-") as tmp:
        tmp_path = Path(tmp)
        short, long = tmp_path / "short.wav", tmp_path / "long.wav"
        print(f"writing a {args.minutes:g}-minute and a 4-s file at {args.sr} Hz ...",
              file=sys.stderr)
        write_long_wav(short, minutes=4 / 60, sr=args.sr)
        write_long_wav(long, minutes=args.minutes, sr=args.sr)
        model = (Path(args.model) if args.model
                 else make_model(tmp_path / "model", Path(args.params)))
        rows = []
        for name, path in (("4-s clip", short), (f"{args.minutes:g}-min file", long)):
            feats = measure(FEATURES, str(path), args.params)
            pred = measure(PREDICT, str(path), args.params, str(model))
            rows.append((name, path.stat().st_size / 1e6, feats["rss_mb"], pred["rss_mb"]))
        whole = None if args.skip_whole else measure(WHOLE, str(long), args.params)
    print(f"{'input':<14} {'file MB':>8} {'features peak RSS MB':>21} {'predict peak RSS MB':>20}")
    for name, mb, f_rss, p_rss in rows:
        print(f"{name:<14} {mb:8.1f} {f_rss:21.0f} {p_rss:20.0f}")
    ratio_f, ratio_p = rows[1][2] / rows[0][2], rows[1][3] / rows[0][3]
    print(f"long/short ratio: features {ratio_f:.2f}x, predict {ratio_p:.2f}x")
    if whole:
        print(f"decoding the whole {args.minutes:g}-min file first (before the limit): "
              f"{whole['rss_mb']:.0f} MB peak RSS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
