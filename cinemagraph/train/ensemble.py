"""Retired: ``python -m cinemagraph.train.ensemble`` is now ``python -m cinemagraph.train.weights ensemble``."""

import sys

if __name__ == "__main__":
    print("error: python -m cinemagraph.train.ensemble is now python -m cinemagraph.train.weights "
          "ensemble (same arguments)", file=sys.stderr)
    sys.exit(2)
