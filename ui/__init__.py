"""Streamlit glue shared by the pages: cached model, the current song, the controls.

Only rendering lives here and in ``pages/``; every computation is a ``virality`` call.
"""
