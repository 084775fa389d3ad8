"""Write a benchmark's results into its docs page, between markers, keeping the prose around."""

from __future__ import annotations

from pathlib import Path

START, END = "<!-- results:start -->", "<!-- results:end -->"


def write_results(path: Path, text: str, *, title: str) -> None:
    """Put ``text`` between the markers of ``path``; a page without them gets them appended.

    The prose of a page (what was run and how to read it) is written by hand, the numbers by
    the script: replacing only the marked block keeps both current.
    """
    block = f"{START}\n{text}\n{END}"
    if path.exists():
        current = path.read_text(encoding="utf-8")
        if START in current and END in current:
            head, rest = current.split(START, 1)
            _, tail = rest.split(END, 1)
            path.write_text(head + block + tail, encoding="utf-8")
            return
        path.write_text(current.rstrip() + "\n\n" + block + "\n", encoding="utf-8")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {title}\n\n" + block + "\n", encoding="utf-8")
