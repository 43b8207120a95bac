"""Validation against the Jenkins xUnit plugin's junit-10.xsd (vendored in
tests/fixtures/junit/ with its MIT licence, unchanged), the strictest common
reader, so every kind of JUnit file ccvm writes is checked against it, with
one addition made here, not in the file: a testcase may carry ``file`` and
``line`` (as pytest's xunit1 family writes them), which GitHub's JUnit
reporters read to annotate the right place (docs/src/junit.md)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

SCHEMA = Path(__file__).resolve().parent / "fixtures" / "junit" / "junit-10.xsd"


XS = "{http://www.w3.org/2001/XMLSchema}"


@cache
def _schema() -> etree.XMLSchema:
    document = etree.parse(str(SCHEMA))
    testcase = document.find(f"{XS}element[@name='testcase']/{XS}complexType")
    for name, kind in (("file", "xs:string"), ("line", "xs:nonNegativeInteger")):
        etree.SubElement(testcase, f"{XS}attribute", name=name, type=kind, use="optional")
    return etree.XMLSchema(document)


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
