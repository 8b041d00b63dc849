"""Classify emotional speech in audio files: ``python predict.py --file clip.wav``.

A thin wrapper around :mod:`ser.cli.predict` (also installed as ``ser-predict``).
"""

import sys

from ser.cli.predict import main

if __name__ == "__main__":
    sys.exit(main())
