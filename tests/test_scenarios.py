"""Each boot scenario's check function, on the facts a stub run reports,
and how the runner turns a check or a failed boot into JUnit cases.  No
guest: the facts are what the stub would print (hex-encoded, as it does)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccvm.checks.boot.runner import boot_failed, judge
from ccvm.checks.boot.scenarios import (
    CASE_NAMES,
    EXPECTED_STATUS,
    GUEST_FILE,
    HARD_ARGS,
    Evidence,
    boot_plans,
    check_argv,
    check_share,
    check_status,
    probe_text,
)
from ccvm.errors import GuestFailure, LaunchError
from ccvm.qemu.guestrun import GuestRun
from ccvm.report.results import Outcome

TOKEN = "00112233aabbccdd"
OVERLAY, WRITABLE = boot_plans(TOKEN)


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


def evidence(plan, share: Path, facts: dict[str, str], status: int = EXPECTED_STATUS) -> Evidence:
    text = "".join(f"CCVM:FACT {key}={value}\n" for key, value in facts.items())  # as the stub prints them
    run = GuestRun(status=status, facts=facts, agent_text=text, qemu_argv=("qemu",), seconds=1.5)
    return Evidence(run=run, plan=plan, share=share, probe_text=probe_text(TOKEN))


def test_the_embedded_boots_are_declared_as_a_project_declares_its_own():
    from ccvm.matrix.launcher_boot import BootScenario

    assert all(isinstance(plan.boot, BootScenario) for plan in (OVERLAY, WRITABLE))
    assert (OVERLAY.boot.share, WRITABLE.boot.share) == ("overlay", "writable")
    assert OVERLAY.boot.must_not_exist == WRITABLE.boot.must_exist == (".ccvm-guest-wrote",)
    assert OVERLAY.boot.exit_status == EXPECTED_STATUS and OVERLAY.boot.prepare[".ccvm-probe"] == probe_text(TOKEN)


def test_a_missing_expected_line_fails_the_share_case(tmp_path):
    run = GuestRun(status=0, facts=share_facts("9p"), agent_text="no facts", qemu_argv=("qemu",), seconds=1.0)
    (tmp_path / ".ccvm-guest-wrote").write_text(TOKEN)
    found = check_share(Evidence(run=run, plan=WRITABLE, share=tmp_path, probe_text=probe_text(TOKEN)))
    assert found == "writable share: no output line matches '^CCVM:FACT share\\\\.fstype=9p$'"


def test_case_names_are_derived_from_the_plans_in_order():
    assert CASE_NAMES == ("argv-verbatim", "share-overlay", "exit-status", "share-writable")
    assert [s.name for s in OVERLAY.scenarios] + [s.name for s in WRITABLE.scenarios] == list(CASE_NAMES)
    assert OVERLAY.program[1:] == HARD_ARGS and not OVERLAY.writable and WRITABLE.writable


def test_argv_verbatim_passes_when_every_argument_arrives(tmp_path):
    assert check_argv(evidence(OVERLAY, tmp_path, argv_facts(HARD_ARGS))) is None


def test_argv_names_the_first_argument_that_differs(tmp_path):
    mangled = list(HARD_ARGS)
    mangled[1] = "its quoted"
    problem = check_argv(evidence(OVERLAY, tmp_path, argv_facts(mangled)))
    assert problem == f"argv[1]: expected {HARD_ARGS[1]!r}, the stub saw 'its quoted'"


def test_argv_count_mismatch_and_missing_facts(tmp_path):
    assert "argc: expected 11, the stub saw 10" in check_argv(evidence(OVERLAY, tmp_path, argv_facts(HARD_ARGS[:-1])))
    assert "the stub saw nothing" in check_argv(evidence(OVERLAY, tmp_path, {}))


def test_exit_status(tmp_path):
    assert check_status(evidence(OVERLAY, tmp_path, {})) is None
    assert check_status(evidence(OVERLAY, tmp_path, {}, status=0)) == (
        f"the launcher reported exit status 0, the stub exited {EXPECTED_STATUS}"
    )


def test_overlay_share_passes_when_the_write_stays_in_the_guest(tmp_path):
    assert check_share(evidence(OVERLAY, tmp_path, share_facts("overlay"))) is None


@pytest.mark.parametrize(
    ("facts", "words"),
    [
        ({"share.write": "ok", "share.fstype": "overlay"}, "could not see the host's probe file"),
        ({"share.read": "missing", "share.write": "ok"}, "could not see the host's probe file"),
        (share_facts("overlay", read="stale"), "the probe file reads 'stale'"),
        ({**share_facts("overlay"), "share.write": "EROFS"}, "could not write to its working directory"),
        (share_facts("9p"), "default share: the working directory is '9p', expected overlay"),
    ],
)
def test_overlay_share_problems(tmp_path, facts, words):
    assert words in check_share(evidence(OVERLAY, tmp_path, facts))


def test_overlay_share_fails_when_the_write_reaches_the_host(tmp_path):
    (tmp_path / GUEST_FILE).write_text(TOKEN)
    assert f"default share: {GUEST_FILE} reached the host" in check_share(
        evidence(OVERLAY, tmp_path, share_facts("overlay"))
    )


def test_writable_share_passes_when_the_guest_write_lands_on_the_host(tmp_path):
    (tmp_path / GUEST_FILE).write_text(TOKEN, encoding="utf-8")
    assert check_share(evidence(WRITABLE, tmp_path, share_facts("9p"))) is None


def test_writable_share_problems(tmp_path):
    assert "expected 9p" in check_share(evidence(WRITABLE, tmp_path, share_facts("overlay")))
    assert "did not reach the host" in check_share(evidence(WRITABLE, tmp_path, share_facts("9p")))
    (tmp_path / GUEST_FILE).write_text("something else")
    assert "does not hold what the guest wrote" in check_share(evidence(WRITABLE, tmp_path, share_facts("9p")))


def test_judge_makes_a_passing_and_a_failing_case(tmp_path):
    scenario = OVERLAY.scenarios[2]  # exit-status
    facts = {"argc": "0"}
    passed = judge(scenario, evidence(OVERLAY, tmp_path, facts))
    assert (passed.name, passed.outcome, passed.message, passed.details) == ("exit-status", Outcome.PASS, "", "")
    assert passed.output == "CCVM:FACT argc=0\n" and passed.seconds == 1.5
    failed = judge(scenario, evidence(OVERLAY, tmp_path, facts, status=1))
    assert failed.outcome is Outcome.FAIL and "exit status 1" in failed.message
    assert failed.details == "CCVM:FACT argc=0\n"


def test_a_failed_boot_fails_every_case_of_its_plan_with_the_structured_fields(tmp_path):
    (tmp_path / "qemu.log").write_text("qemu: could not load kernel\n")
    launch = LaunchError("QEMU exited during start-up", argv=["qemu-system-x86_64", "-M", "q35"], output="bad kernel")
    cases = boot_failed(OVERLAY, launch, 0.25, tmp_path)
    assert [c.name for c in cases] == ["argv-verbatim", "share-overlay", "exit-status"]
    assert {c.message for c in cases} == {"overlay boot: QEMU exited during start-up"}
    assert cases[0].details == "QEMU exited during start-up\ncommand: qemu-system-x86_64 -M q35\noutput: bad kernel"
    assert "--- qemu.log ---\nqemu: could not load kernel" in cases[0].output
    guest = boot_failed(
        WRITABLE, GuestFailure("timed out waiting for the guest init", tail="console tail"), 3.0, tmp_path
    )
    assert (
        guest[0].message == "writable boot: timed out waiting for the guest init" and guest[0].details == "console tail"
    )
