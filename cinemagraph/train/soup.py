"""Retired: ``python -m cinemagraph.train.soup`` is now ``python -m cinemagraph.train.weights soup``."""

import sys

if __name__ == "__main__":
    print("error: python -m cinemagraph.train.soup is now python -m cinemagraph.train.weights "
          "soup (same arguments)", file=sys.stderr)
    sys.exit(2)
