"""The one judge (ccvm.checks.boot.judge): the embedded launcher's cases on
the facts a stub run reports, a declared scenario's one case, and a boot
that failed by itself.  No guest: the output is what the stub would print
(hex-encoded facts, as it does); every expectation is written out here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ccvm.checks.boot.judge import case_names, judge
from ccvm.launcher.boot import LaunchResult
from ccvm.launcher.embedded import EMBEDDED, GUEST_FILE, HARD_ARGS, embedded_boots, probe_text
from ccvm.matrix.launcher_boot import BootScenario
from ccvm.report.results import Outcome

TOKEN = "00112233aabbccdd"
OVERLAY, WRITABLE = embedded_boots(TOKEN).scenarios


def hexed(text: str) -> str:
    return text.encode("utf-8", errors="surrogateescape").hex()


def argv_facts(args) -> dict[str, str]:
    return {"argc": str(len(args)), **{f"argv.{i}": hexed(a) for i, a in enumerate(args)}}


def share_facts(fstype: str, read: str | None = None) -> dict[str, str]:
    return {
        "share.read": hexed(read if read is not None else probe_text(TOKEN)),
        "share.write": "ok",
        "share.fstype": fstype,
    }


def stub_run(facts: dict[str, str], status: int = 7, seconds: float = 1.5) -> LaunchResult:
    text = "".join(f"CCVM:FACT {key}={value}\n" for key, value in facts.items())  # as the stub prints them
    return LaunchResult(output=text, status=status, seconds=seconds, qemu_argv=("qemu",))


def verdicts(scenario: BootScenario, share: Path, run: LaunchResult) -> dict[str, str]:
    """Each case's message ('' for a pass)."""
    return {case.name: case.message for case in judge(scenario, run, share)}


def test_the_embedded_launcher_names_its_four_cases_on_two_boots():
    assert [s.name for s in EMBEDDED.boot.scenarios] == ["overlay", "writable"]
    assert case_names(OVERLAY) == ("argv-verbatim", "share-overlay", "exit-status")
    assert case_names(WRITABLE) == ("share-writable",)
    assert OVERLAY.args == HARD_ARGS and OVERLAY.exit_status == 7 and OVERLAY.share == "overlay"
    assert OVERLAY.must_not_exist == WRITABLE.must_exist == (".ccvm-guest-wrote",)
    assert OVERLAY.prepare == {".ccvm-probe": f"host probe {TOKEN} ✓"}


def test_a_declared_scenario_is_one_case_named_as_the_scenario():
    scenario = BootScenario(name="smoke", share="overlay")
    assert case_names(scenario) == ("smoke",)


def test_a_whole_good_overlay_boot_passes_all_three_cases(tmp_path):
    run = stub_run({**argv_facts(HARD_ARGS), **share_facts("overlay")})
    cases = judge(OVERLAY, run, tmp_path)
    assert [(c.name, c.outcome, c.message) for c in cases] == [
        ("argv-verbatim", Outcome.PASS, ""),
        ("share-overlay", Outcome.PASS, ""),
        ("exit-status", Outcome.PASS, ""),
    ]
    assert [c.seconds for c in cases] == [0.5, 0.5, 0.5]  # the boot's time, shared out


def test_argv_names_the_first_argument_that_differs(tmp_path):
    mangled = list(HARD_ARGS)
    mangled[1] = "its quoted"
    found = verdicts(OVERLAY, tmp_path, stub_run({**argv_facts(mangled), **share_facts("overlay")}))
    assert found["argv-verbatim"] == "argv[1]: expected 'it\\'s \"quoted\"', the stub saw 'its quoted'"
    assert found["share-overlay"] == "" and found["exit-status"] == ""


def test_argv_count_mismatch_and_missing_facts(tmp_path):
    short = verdicts(OVERLAY, tmp_path, stub_run(argv_facts(HARD_ARGS[:-1])))
    assert short["argv-verbatim"] == "argc: expected 11, the stub saw 10"
    assert verdicts(OVERLAY, tmp_path, stub_run({}))["argv-verbatim"] == "argc: expected 11, the stub saw nothing"


def test_exit_status(tmp_path):
    found = verdicts(OVERLAY, tmp_path, stub_run(share_facts("overlay"), status=0))
    assert found["exit-status"] == "the launcher reported exit status 0, the stub exited 7"


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        (
            {"share.write": "ok", "share.fstype": "overlay"},
            "host -> guest: the stub could not see the host's probe file",
        ),
        ({"share.read": "missing", "share.write": "ok"}, "host -> guest: the stub could not see the host's probe file"),
        (
            share_facts("overlay", read="stale"),
            f"host -> guest: the probe file reads 'stale', expected 'host probe {TOKEN} ✓'",
        ),
        ({**share_facts("overlay"), "share.write": "EROFS"}, "the guest could not write to its working directory"),
        (share_facts("9p"), "default share: the working directory is '9p', expected overlay"),
    ],
)
def test_overlay_share_problems(tmp_path, facts, message):
    assert verdicts(OVERLAY, tmp_path, stub_run(facts))["share-overlay"] == message


def test_overlay_share_fails_when_the_write_reaches_the_host(tmp_path):
    (tmp_path / GUEST_FILE).write_text(TOKEN)
    assert verdicts(OVERLAY, tmp_path, stub_run(share_facts("overlay")))["share-overlay"] == (
        "guest -> host, default share: .ccvm-guest-wrote reached the host "
        "(it must not exist in the shared directory after the boot)"
    )


def test_writable_share_passes_when_the_guest_write_lands_on_the_host(tmp_path):
    (tmp_path / GUEST_FILE).write_text(TOKEN, encoding="utf-8")
    assert verdicts(WRITABLE, tmp_path, stub_run(share_facts("9p"), status=0)) == {"share-writable": ""}


def test_writable_share_problems(tmp_path):
    run = stub_run(share_facts("9p"), status=0)
    assert verdicts(WRITABLE, tmp_path, stub_run(share_facts("overlay"), status=0))["share-writable"] == (
        "writable share: the working directory is 'overlay', expected 9p"
    )
    assert verdicts(WRITABLE, tmp_path, run)["share-writable"] == (
        "guest -> host, writable share: .ccvm-guest-wrote did not reach the host "
        "(it must exist in the shared directory after the boot)"
    )
    (tmp_path / GUEST_FILE).write_text("something else")
    assert verdicts(WRITABLE, tmp_path, run)["share-writable"] == (
        "guest -> host: the file on the host does not hold what the guest wrote"
    )


def test_a_missing_expected_line_fails_the_share_case(tmp_path):
    (tmp_path / GUEST_FILE).write_text(TOKEN)
    run = LaunchResult(output="no facts", status=0, seconds=1.0)
    facts_only = stub_run(share_facts("9p"), status=0)
    without_the_line = LaunchResult(
        output=facts_only.output.replace("share.fstype=9p", "share.fstype=9p "), status=0, seconds=1.0
    )
    assert verdicts(WRITABLE, tmp_path, run)["share-writable"].startswith("host -> guest:")
    assert verdicts(WRITABLE, tmp_path, without_the_line)["share-writable"] == (
        "writable share: the working directory is '9p ', expected 9p"
    )


def test_a_declared_scenario_reports_its_first_problem_and_lists_the_rest(tmp_path):
    scenario = BootScenario(
        name="smoke",
        share="overlay",
        expect=(re.compile("^HELLO$"), re.compile("^NEVER$")),
        must_exist=("out.txt",),
        exit_status=3,
    )
    (case,) = judge(scenario, LaunchResult(output="HELLO\nbye\n", status=0, seconds=2.0), tmp_path)
    assert (case.name, case.outcome, case.seconds) == ("smoke", Outcome.FAIL, 2.0)
    assert case.message == "no output line matches '^NEVER$'"
    assert case.details.splitlines()[:2] == [
        "out.txt did not reach the host (it must exist in the shared directory after the boot)",
        "the launcher reported exit status 0, the scenario expects 3",
    ]
    assert "bye" in case.details and case.output == "HELLO\nbye\n"
    (tmp_path / "out.txt").write_text("x")
    (passed,) = judge(scenario, LaunchResult(output="HELLO\nNEVER\n", status=3, seconds=2.0), tmp_path)
    assert (passed.outcome, passed.message, passed.details) == (Outcome.PASS, "", "")


def test_a_failed_boot_fails_every_case_judged_on_it_naming_the_boot(tmp_path):
    failed = LaunchResult(output="", status=None, seconds=0.25, problem="QEMU exited during start-up", details="why")
    cases = judge(OVERLAY, failed, tmp_path)
    assert [(c.name, c.outcome, c.message, c.details) for c in cases] == [
        (name, Outcome.FAIL, "overlay boot: QEMU exited during start-up", "why")
        for name in ("argv-verbatim", "share-overlay", "exit-status")
    ]
    (case,) = judge(BootScenario(name="smoke", share="overlay"), failed, tmp_path)
    assert case.message == "QEMU exited during start-up"  # its case is named after the boot already
