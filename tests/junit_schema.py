"""Validation against the Jenkins xUnit plugin's junit-10.xsd (vendored in
tests/fixtures/junit/ with its MIT licence): the plugin drops a report that
fails it, so every kind of JUnit file ccvm writes is checked against it."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

SCHEMA = Path(__file__).resolve().parent / "fixtures" / "junit" / "junit-10.xsd"


@cache
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA)))


def schema_errors(path: Path) -> list[str]:
    """The schema's complaints about the file; [] when it is valid."""
    schema = _schema()
    parser = etree.XMLParser(huge_tree=False)
    document = etree.parse(str(path), parser)
    if schema.validate(document):
        return []
    return [f"{path.name}:{error.line}: {error.message}" for error in schema.error_log]


def assert_valid(path: Path) -> None:
    errors = schema_errors(path)
    assert not errors, "\n".join(errors)
