"""Text a user gave (file names, column headers, titles, cells), made safe to put inside Markdown.

Streamlit renders ``st.markdown``, ``st.caption``, ``st.info``/``warning``/``success``/``error``,
spinner and progress texts and widget labels as Markdown: a header ``![px](http://host/p.png)``
there is an image the browser fetches, ``[x](url)`` a link, ``$…$`` LaTeX, ``:red[…]`` colour.
``escape_markdown`` turns such text into Markdown that shows exactly those characters.
Plain-text places (``st.dataframe`` cells and headers, selectbox options) need no escaping; the
HTML report uses ``html.escape``.
"""

from __future__ import annotations

import re

# Every ASCII punctuation character: CommonMark lets each be backslash-escaped, and each
# escaped one renders as itself (images, links, emphasis, code, HTML, tables, headings, lists,
# LaTeX ``$`` and Streamlit's ``:directive[...]`` all start with one of them).
_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~]")
# Line breaks would end the sentence the text sits in and could start a new block.
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x85\u2028\u2029]+")


def escape_markdown(text: object) -> str:
    """``text`` (``str()`` of anything) as Markdown that renders literally, on one line:
    ``"![px](http://h/p.png)"`` → ``"\\!\\[px\\]\\(http\\:\\/\\/h\\/p\\.png\\)"``."""
    flat = _LINE_BREAKS.sub(" ", str(text))
    return _PUNCTUATION.sub(lambda match: "\\" + match.group(), flat)
