"""Classify emotional speech in audio files: ``python predict.py --file clip.wav``.

A thin wrapper around :mod:`ser.classify` (also installed as ``ser-predict``).
"""

import sys

from ser.classify import main

if __name__ == "__main__":
    sys.exit(main())
