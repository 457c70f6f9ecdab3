"""The documentation: the site under docs/ builds with no warning, every result table
in it is benchmarks/tables.py's output from the JSON files under benchmarks/results/
(no figure typed by hand), and README.md stays a short entry page whose links lead
somewhere."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys

import pytest

from tests.conftest import PROJECT_ROOT, benchmark_script
from tests.processes import Completed, run

TABLES = benchmark_script("tables")
DOCS = PROJECT_ROOT / "docs"
README = PROJECT_ROOT / "README.md"
PAGES = sorted(DOCS.rglob("*.md"))


def _shown() -> list[tuple[str, str, str]]:
    """(page, table name, the block under its marker) for every marker in the docs and
    the README."""
    return [
        (str(page.relative_to(PROJECT_ROOT)), name, block)
        for page in [README, *PAGES]
        for name, block in TABLES.shown(page.read_text(), str(page))
    ]


@pytest.mark.parametrize(
    ("page", "name", "block"), _shown(), ids=[f"{p}:{n}" for p, n, _ in _shown()]
)
def test_every_table_shown_is_the_one_its_results_give(page, name, block) -> None:
    assert block == TABLES.TABLES[name](), (
        f"{page}'s {name} table differs from `python benchmarks/tables.py {name}`; "
        "run `python benchmarks/tables.py --docs`"
    )


def test_every_table_is_shown_on_a_page_of_the_docs() -> None:
    shown = {name for page, name, _ in _shown() if page.startswith("docs/")}
    assert sorted(set(TABLES.TABLES) - shown) == []


def test_a_change_in_a_result_file_changes_its_table(tmp_path, monkeypatch) -> None:
    source = PROJECT_ROOT / "benchmarks" / "results" / "seeds-gpu-h200.json"
    copy = tmp_path / "seeds-gpu-h200.json"
    copy.write_text(source.read_text().replace('"mean": 0.89252', '"mean": 0.5'))
    before = TABLES.seeds_table()
    monkeypatch.setattr(TABLES, "RESULTS", tmp_path)
    assert TABLES.seeds_table() != before
    assert "| test accuracy % | 50.00 |" in TABLES.seeds_table()


def test_writing_the_tables_fills_markers_and_changes_nothing_else(tmp_path) -> None:
    for page in PAGES:
        assert TABLES.with_tables(page.read_text()) == page.read_text(), page
    names = list(TABLES.TABLES)
    stale = "| stale | table |\n|---|---|\n| 1 | 2 |\n"
    empty = (
        "intro\n\n"
        + TABLES.marker(names[0])
        + stale
        + "\ntext\n\n"
        + "".join(TABLES.marker(n) + "\n" for n in names[1:])
        + "end\n"
    )
    filled = TABLES.with_tables(empty)
    assert filled.startswith("intro\n\n") and filled.endswith("end\n")
    assert "stale" not in filled and "\ntext\n" in filled
    for name, table in TABLES.TABLES.items():
        assert TABLES.marker(name) + table() + "\n\n" in filled
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        TABLES.with_tables(TABLES.marker("nope") + "\n")

    # --docs fills every page and refuses a docs folder that leaves a table out.
    (tmp_path / "a.md").write_text(empty)
    (tmp_path / "b.md").write_text("no tables\n")
    assert TABLES.write_docs(tmp_path) == [tmp_path / "a.md"]
    assert (tmp_path / "a.md").read_text() == filled
    assert (tmp_path / "b.md").read_text() == "no tables\n"
    (tmp_path / "a.md").write_text(TABLES.marker(names[0]) + "\n")
    missing = re.escape(f"the table(s) {sorted(names[1:])!r}")
    with pytest.raises(ValueError, match=missing):
        TABLES.write_docs(tmp_path)


def _build(config, site) -> Completed:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.fail(
            "mkdocs is not installed: pip install -e '.[docs]' (scripts/test.sh does)"
        )
    return run(
        [sys.executable, "-m", "mkdocs", "build", "--strict"]
        + ["--config-file", str(config), "--site-dir", str(site)],
        timeout=300,
    )


def test_the_site_builds_with_no_warning(tmp_path) -> None:
    built = _build(PROJECT_ROOT / "mkdocs.yml", tmp_path / "site")
    assert built.returncode == 0, built.stdout + built.stderr
    for page in PAGES:
        name = page.relative_to(DOCS).with_suffix("")
        html = "index.html" if name.name == "index" else f"{name}/index.html"
        assert (tmp_path / "site" / html).is_file(), html


def test_a_link_to_a_missing_anchor_fails_the_build(tmp_path) -> None:
    shutil.copy(PROJECT_ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(DOCS, tmp_path / "docs")
    with (tmp_path / "docs" / "index.md").open("a") as index:
        index.write("\nSee [nowhere](results.md#no-such-section).\n")
    built = _build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert built.returncode != 0
    assert "no-such-section" in built.stdout + built.stderr


def test_the_readme_is_a_short_entry_page_whose_links_lead_somewhere() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 250, "README.md grew: move the detail to docs/"
    for command in ("bash scripts/run.sh", "bash scripts/test.sh", "CIFAR10_RAW_PATH"):
        assert command in text
    targets = re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if "://" not in t]
    assert "docs/index.md" in local
    for target in local:
        assert (PROJECT_ROOT / target).exists(), f"README.md links to missing {target}"
    # Measurements live in docs/, in tables written from results files.
    figures = re.findall(
        r"\d[\d,.]*\s*(?:images/s|img/s|ms\b|s an epoch|seconds|minutes|min\b|GiB|MiB|%)",
        text,
    )
    assert figures == [], f"README.md quotes measured figures: {figures}"
