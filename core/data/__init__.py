"""Rows in: local files and Hub datasets, their labels, cleaning and splits, and the preview statistics."""
