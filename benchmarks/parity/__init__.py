"""Jupyter parity on real notebooks (issue 25): see run.py."""
