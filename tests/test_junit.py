"""The JUnit reporter against a golden file, and XML safety of console text."""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from clirun import run_ccvm

from ccvm.errors import UsageError
from ccvm.report.junit import to_xml, write_junit
from ccvm.report.results import Case, EarlierFailure, Outcome, Suite
from ccvm.text import clean_text

GOLDEN = Path(__file__).parent / "fixtures" / "junit" / "boot-golden.xml"

NASTY = "ok\x1b[31mred\x1b[0m \x00nul \x07bell \x1b]0;title\x07 tab\t ✓ \ud800"


def sample() -> list[Suite]:
    return [
        Suite(
            name="boot.x86_64-tcg-q35",
            properties={"accel": "tcg", "kernel_sha256": "ab" * 32, "qemu_argv": '["qemu-system-x86_64", "-M", "q35"]'},
            cases=[
                Case(name="argv-verbatim", outcome=Outcome.PASS, seconds=9.87654, output="CCVM:FACT argc=1"),
                Case(
                    name="exit-status", outcome=Outcome.FAIL, seconds=1.5, message="status 0, expected 7", details=NASTY
                ),
            ],
        ),
        Suite(
            name="boot.aarch64-kvm-virt",
            properties={"accel": "none"},
            cases=[Case(name="argv-verbatim", outcome=Outcome.SKIP, message="kvm needs an aarch64 host")],
        ),
        Suite(
            name="boot.aarch64-tcg-virt",
            log_path="reports/boot/aarch64-tcg-virt/attempt-2/overlay/console.log",
            properties={"attempts": "2", "flaky": "exit-status"},
            seconds=31.0,  # the cell's wall time: its boots overlapped
            cases=[
                Case(
                    name="exit-status",
                    outcome=Outcome.PASS,
                    seconds=30.2040000001,
                    output=(
                        "earlier attempts of this case failed:\nattempt 1: overlay boot: no exit line\nCCVM:STATUS 0"
                    ),
                    earlier_failures=(
                        EarlierFailure(
                            attempt=1,
                            message="overlay boot: no exit line",
                            logs="reports/boot/aarch64-tcg-virt/attempt-1",
                        ),
                    ),
                ),
                # passed in both attempts: not flaky, no flakyFailure
                Case(name="share-writable", outcome=Outcome.PASS, seconds=12.5, output="CCVM:FACT share.fstype=9p"),
            ],
        ),
    ]


def test_matches_golden_file():
    assert to_xml(sample()) == GOLDEN.read_text(encoding="utf-8")


def test_console_garbage_still_parses():
    root = ET.fromstring(to_xml(sample()).encode("utf-8"))
    failure = root.find(".//testcase[@name='exit-status']/failure")
    assert failure is not None and "red" in failure.text and "\x1b" not in failure.text


def test_skipped_is_never_a_pass():
    root = ET.fromstring(to_xml(sample()).encode("utf-8"))
    case = root.find(".//testcase[@classname='boot.aarch64-kvm-virt']")
    assert case.find("skipped").get("message") == "kvm needs an aarch64 host"
    assert root.find(".//testsuite[@name='boot.aarch64-kvm-virt']").get("skipped") == "1"


def test_skip_reason_is_the_message_and_the_text():
    root = ET.fromstring(to_xml(sample()).encode("utf-8"))
    skipped = root.find(".//testcase[@classname='boot.aarch64-kvm-virt']/skipped")
    assert skipped.get("message") == skipped.text == "kvm needs an aarch64 host"


def test_times_are_milliseconds_and_there_is_no_disabled_attribute():
    text = to_xml(sample())
    assert 'time="30.204"' in text and "disabled" not in text
    assert ET.fromstring(text.encode()).get("skipped") is None


def test_flaky_pass_holds_a_flaky_failure_and_names_every_log():
    root = ET.fromstring(to_xml(sample()).encode("utf-8"))
    case = root.find(".//testcase[@classname='boot.aarch64-tcg-virt']")
    flaky = case.find("flakyFailure")
    assert flaky.get("message") == "overlay boot: no exit line" and case.find("failure") is None
    assert flaky.find("system-out").text == "logs: reports/boot/aarch64-tcg-virt/attempt-1"
    out = case.find("system-out").text
    assert "full log: reports/boot/aarch64-tcg-virt/attempt-2/overlay/console.log" in out
    assert "[[ATTACHMENT|reports/boot/aarch64-tcg-virt/attempt-2/overlay/console.log]]" in out


def test_clean_text_removes_ansi_and_escapes_control():
    assert clean_text("\x1b[1mbold\x1b[0m\x01") == "bold\\x01"


def test_a_directory_given_as_the_junit_path_is_a_usage_error_naming_the_option(tmp_path):
    with pytest.raises(UsageError) as caught:
        write_junit(tmp_path, sample())
    assert str(caught.value) == f"--junit {tmp_path}: cannot write the JUnit file: Is a directory"
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_lint_with_a_directory_as_junit_exits_2_in_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "DIR").mkdir()
    result = run_ccvm("lint", "--root", str(tmp_path / "empty"), "--junit", str(tmp_path / "DIR"), timeout=120)
    assert result.returncode == 2
    assert result.stderr == f"ccvm: error: --junit {tmp_path / 'DIR'}: cannot write the JUnit file: Is a directory\n"
