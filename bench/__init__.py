"""Corridor benchmarks: ``python -m bench`` (``make bench``) prints figures, each as a ratio to a
baseline measured in the same run. See bench/README.md for what each figure means."""
