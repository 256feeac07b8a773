"""Command-line entry points: ``cinemagraph render`` (also ``python -m cinemagraph.render``)."""
