"""Evidentiary web archive: capture, seal, store and verify web pages."""

__version__ = "0.1.0"
SOFTWARE = f"archive {__version__}"
