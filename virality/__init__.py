"""virality: will this song take off on TikTok, and what would help it?"""

__version__ = "0.1.0"
