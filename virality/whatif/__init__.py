"""What-if: small, plausible edits to a song that raise its predicted score."""
