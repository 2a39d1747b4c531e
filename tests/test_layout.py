"""The one page list, ``ui.layout.PAGES``: every page exists, the menu shows each with its
label, and each page opens with its label as its title."""

from __future__ import annotations

import pytest

from tests.apptest import ROOT, open_app
from ui.layout import PAGES


def test_every_page_in_the_list_exists_and_pages_holds_no_other():
    listed = {ROOT / path for path, _, _ in PAGES}
    assert all(path.is_file() for path in listed)
    assert set((ROOT / "pages").glob("*.py")) == listed


@pytest.mark.parametrize(("path", "label"), [(path, label) for path, label, _ in PAGES])
def test_each_page_opens_with_its_label_as_title(path, label):
    at = open_app(None if path == PAGES[0][0] else path)
    assert at.title[0].value == label
