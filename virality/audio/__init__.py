"""From audio: decode a file and measure its tempo, key, mode, loudness and length."""
