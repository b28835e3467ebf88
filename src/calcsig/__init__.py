"""calcsig: calcification signatures from mammograms."""

__version__ = "0.1.0"
