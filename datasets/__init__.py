"""Pinpoint datasets: sources, sharding to zarr, dataset commitments and the batch schedule.

This package shadows the PyPI ``datasets`` package on purpose (Pinpoint runs from its repository
root, see docs/design.md §2); nothing in Pinpoint depends on that package.
"""
