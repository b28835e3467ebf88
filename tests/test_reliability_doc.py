"""docs/reliability.md names a test for each bad-input case; every test it names exists."""

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "reliability.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def test_every_test_named_in_the_reliability_doc_exists():
    references = REFERENCE.findall(DOC.read_text())
    assert len(references) > 100
    missing = [
        f"{file}::{name}"
        for file, name in references
        if not (REPO / file).is_file() or name not in defined_tests(REPO / file)
    ]
    assert missing == []


def case_rows() -> list[list[str]]:
    """The cells of each row of the case tables (the section '## Cases' up to the next '## ')."""
    section = DOC.read_text().split("\n## Cases\n")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| case |")]
    return [[cell.strip() for cell in row.strip().strip("|").split(" | ")] for row in rows]


def test_every_case_row_says_what_calcsig_does_and_names_a_test_or_why_not():
    rows = case_rows()
    assert len(rows) >= 80
    for case, behaviour, tests in rows:
        assert case and behaviour, case
        assert REFERENCE.search(tests) or tests == "none here", case
