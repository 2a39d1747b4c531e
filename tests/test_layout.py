"""The sidebar navigation: Streamlit rejects ``st.page_link`` to the main script of an app
without a ``pages/`` folder (in a real browser session; AppTest does not notice), so a
one-page app draws no links, and a multipage app links every page that exists."""

from __future__ import annotations

from ui import layout


def make_app(folder, *pages: str):
    (folder / "app.py").write_text("")
    for page in pages:
        (folder / page).parent.mkdir(exist_ok=True)
        (folder / page).write_text("")


def test_a_one_page_app_draws_no_links(tmp_path, monkeypatch):
    make_app(tmp_path)
    monkeypatch.setattr(layout, "ROOT", tmp_path)
    assert layout.available_pages() == []


def test_every_existing_page_is_linked_in_order(tmp_path, monkeypatch):
    make_app(tmp_path, "pages/4_Batch.py", "pages/2_Explain.py")
    monkeypatch.setattr(layout, "ROOT", tmp_path)
    assert [label for _, label, _ in layout.available_pages()] == ["Predict", "Explain", "Batch"]
