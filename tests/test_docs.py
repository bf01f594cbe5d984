"""The repository carries its own knowledge: every document it cites is in it, and every section it cites exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CITING = ("segstudio", "tests", "benchmarks", "docs")
NOTES = REPO / "docs" / "MODEL_NOTES.md"
SECTION_CITE = re.compile(r"docs/MODEL_NOTES\.md\s+§(\d+(?:\.\d+)?)(?:\s+(P\d+))?")
# the names of the documents that used to live outside the repository, spelt so that a grep for them finds none
OUTSIDE = re.compile("|".join([r"MODEL_" + "SPECS", r"shared/" + "DESIGN", r"shared/" + "reference",
                               r"(?<![\w/])" + r"DESIGN\.md"]))


def _texts() -> dict[Path, str]:
    files = [REPO / "README.md", REPO / "CONTRIBUTING.md", REPO / "pyproject.toml"]
    for top in CITING:
        files += [p for p in (REPO / top).rglob("*") if p.suffix in (".py", ".md", ".toml") and p.is_file()]
    return {p: p.read_text(encoding="utf-8") for p in files if p.exists() and p != Path(__file__)}


def test_no_reference_points_outside_the_repository() -> None:
    found = [f"{p.relative_to(REPO)}:{t.count(chr(10), 0, m.start()) + 1}: {m.group()}"
             for p, t in _texts().items() for m in OUTSIDE.finditer(t)]
    assert not found, "documents outside the repository are cited:\n" + "\n".join(found)


def test_every_cited_model_notes_section_exists() -> None:
    notes = NOTES.read_text(encoding="utf-8")
    sections = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", notes, re.M))
    pitfalls = set(re.findall(r"^\| (P\d+) \|", notes, re.M))
    cited = [(p, m.group(1), m.group(2)) for p, t in _texts().items() for m in SECTION_CITE.finditer(t)]
    assert len(cited) > 30  # the zoo's code and specs cite the notes throughout
    missing = [f"{p.relative_to(REPO)}: §{s}{' ' + pit if pit else ''}" for p, s, pit in cited
               if s not in sections or (pit is not None and pit not in pitfalls)]
    assert not missing, "cited sections that docs/MODEL_NOTES.md lacks:\n" + "\n".join(missing)



def test_the_documents_a_newcomer_needs_are_there() -> None:
    for name in ("docs/ARCHITECTURE.md", "CONTRIBUTING.md", "docs/MODEL_NOTES.md"):
        assert (REPO / name).is_file(), name
    contributing = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
    sections = {m.group(1).lower(): m.group(2) for m in re.finditer(r"^## Adding an? ([^\n]+)\n(.*?)(?=^## |\Z)",
                                                                   contributing, re.M | re.S)}
    for checklist in ("network", "tool", "format", "backend"):
        body = next((text for title, text in sections.items() if checklist in title), None)
        assert body is not None, f"CONTRIBUTING.md has no checklist for adding a {checklist}"
        assert "**Prove it**" in body and "tests/" in body, f"the {checklist} checklist ends without its test"
