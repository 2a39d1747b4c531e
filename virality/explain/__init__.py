"""Explain: Captum attributions in popularity points, one song in words, sensitivity and combinations."""
