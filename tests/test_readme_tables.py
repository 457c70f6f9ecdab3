"""The README's result tables are benchmarks/tables.py's output from the JSON files
under benchmarks/results/: no figure in them is typed by hand."""

from __future__ import annotations

import pytest

from tests.conftest import PROJECT_ROOT, benchmark_script

TABLES = benchmark_script("tables")


@pytest.mark.parametrize("name", list(TABLES.TABLES))
def test_the_readme_shows_the_table_its_results_give(name) -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    marker = TABLES.marker(name)
    assert marker in readme, f"README.md has no {marker.strip()} table"
    shown = readme.split(marker, 1)[1].split("\n\n", 1)[0]
    assert shown == TABLES.TABLES[name](), (
        f"README.md's {name} table differs from `python benchmarks/tables.py {name}`"
    )


def test_a_change_in_a_result_file_changes_its_table(tmp_path, monkeypatch) -> None:
    source = PROJECT_ROOT / "benchmarks" / "results" / "seeds-gpu-h200.json"
    copy = tmp_path / "seeds-gpu-h200.json"
    copy.write_text(source.read_text().replace('"mean": 0.89252', '"mean": 0.5'))
    before = TABLES.seeds_table()
    monkeypatch.setattr(TABLES, "RESULTS", tmp_path)
    assert TABLES.seeds_table() != before
    assert "| test accuracy % | 50.00 |" in TABLES.seeds_table()


def test_writing_the_tables_into_the_readme_fills_markers_and_changes_nothing_else() -> (
    None
):
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert TABLES.with_tables(readme) == readme
    empty = (
        "intro\n\n" + "".join(TABLES.marker(n) + "\n" for n in TABLES.TABLES) + "end\n"
    )
    filled = TABLES.with_tables(empty)
    assert filled.startswith("intro\n\n") and filled.endswith("end\n")
    for name, table in TABLES.TABLES.items():
        assert TABLES.marker(name) + table() + "\n\n" in filled
    with pytest.raises(ValueError, match="README.md has no line"):
        TABLES.with_tables("no markers\n")
