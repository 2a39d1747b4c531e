"""Batch: score a file of tracks (the CLI's ``score``), rank and explain them, export the result."""
