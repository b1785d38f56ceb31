"""The docs a newcomer reads: the site builds with no broken link, every generated part equals
its source, the README stays short, every figure comes from bench/results, and nothing cites
a document the repository does not hold."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Pages that may hold dates, machines and measured figures: the generated benchmarks page
# and the changelog. Everywhere else, a figure would be a second, drifting copy.
FIGURES_ALLOWED = {ROOT / "docs" / "benchmarks.md", ROOT / "CHANGELOG.md"}
DATED_OR_MEASURED = re.compile(
    r"20\d\d-[01]\d-[0-3]\d|AMD EPYC|Intel Xeon|\bissue \d+|"
    r"\d[\d,.]* (?:requests|customers|users)/s"
)
FENCED = re.compile(r"```.*?```", re.S)  # sample data and commands, not figures


def tracked(*patterns: str) -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [ROOT / name for name in names if (ROOT / name).is_file()]


def docs_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_the_site_builds_strictly(tmp_path):
    done = subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "site" / "your-data" / "index.html").is_file()
    assert (tmp_path / "site" / "reference" / "openapi.yaml").is_file()


def test_every_generated_block_equals_its_source():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_the_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_no_page_but_the_benchmarks_and_the_changelog_holds_a_dated_or_measured_figure():
    offending = {}
    for page in docs_pages():
        if page in FIGURES_ALLOWED:
            continue
        found = DATED_OR_MEASURED.findall(FENCED.sub("", page.read_text()))
        if found:
            offending[str(page.relative_to(ROOT))] = found[:5]
    assert not offending, offending


def test_no_file_cites_a_document_the_repository_does_not_hold():
    # A document: a path under docs/, or an upper-case name such as CHANGELOG.md.
    cited = re.compile(r"(?<![\w/.-])(docs/[\w/.-]+\.md|[A-Z][A-Z_]+\.md)\b")
    missing = {}
    for path in tracked("*.py", "*.md", "*.sh", "*.yaml", "*.toml", "Makefile", "Dockerfile"):
        for name in cited.findall(path.read_text(errors="replace")):
            candidates = [ROOT / name, path.parent / name, ROOT / "docs" / name]
            if not any(candidate.is_file() for candidate in candidates):
                missing.setdefault(str(path.relative_to(ROOT)), []).append(name)
    assert not missing, missing
