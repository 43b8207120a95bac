"""The egress preflight: a download from an unreachable host fails in
seconds, naming the host.  Only loopback addresses are ever contacted."""

from __future__ import annotations

import select
import socket
import threading
import time

import pytest
from nixtest import flake_copy, host_system, offline_env, read_junit, run_ccvm, slow_eval_flake

from ccvm.checks.nix.egress import (
    Endpoint,
    Fetch,
    check_fetch,
    derivations_to_build,
    endpoint,
    preflight,
    unreachable_reason,
)
from ccvm.nixtool import find_nix

# The preflight takes well under a second; this bounds a hang on a host busy with other nix and QEMU work
# (the messages show that the preflight decided), and stays below the 120 s a fixed timeout would take.
FAST_S = 60.0


@pytest.fixture
def system(nix_bin: str) -> str:
    """The system nix builds for here (asking for nix_bin puts the test in the nix tier)."""
    return host_system(nix_bin)


def test_build_fails_fast_naming_the_host_to_allow(tmp_path, system):
    junit = tmp_path / "build.xml"
    started = time.monotonic()
    result = run_ccvm(
        "build", "--flake", flake_copy(tmp_path, "egress"), "--attr", "agent", "--system", system, "--junit", str(junit)
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert elapsed < FAST_S
    case = read_junit(junit)[f"build.agent.{system}"]
    assert case.outcome == "fail"
    assert case.message.startswith("egress blocked: agent-vendor.tar.gz must be downloaded from 127.0.0.2")
    assert "127.0.0.2:9: connection refused" in case.message
    assert case.message.endswith("add 127.0.0.2 to the egress allowlist")


def test_flake_check_fails_fast_and_does_not_start_nix_flake_check(tmp_path, system):
    junit = tmp_path / "flake-check.xml"
    started = time.monotonic()
    result = run_ccvm("flake-check", "--flake", flake_copy(tmp_path, "egress"), "--junit", str(junit))
    assert time.monotonic() - started < FAST_S
    assert result.returncode == 1
    cases = read_junit(junit)
    check = cases[f"flake-check.{system}.agent-runs"]
    assert check.outcome == "fail"
    assert "add 127.0.0.2 to the egress allowlist" in check.message
    assert cases["flake-check.evaluate"].message.startswith("not run: egress blocked")


def test_preflight_passes_a_build_with_no_pending_download(tmp_path, monkeypatch, system):
    monkeypatch.setenv("NIX_CONFIG", offline_env()["NIX_CONFIG"])
    nix = find_nix()
    installable = f"{flake_copy(tmp_path, 'builds')}#packages.{system}.greeting"
    result = preflight(nix, installable)
    assert result.ok and result.blocked == ()


def test_preflight_reports_an_installable_that_does_not_evaluate(tmp_path, monkeypatch, system):
    monkeypatch.setenv("NIX_CONFIG", offline_env()["NIX_CONFIG"])
    result = preflight(find_nix(), f"{flake_copy(tmp_path, 'eval-fails')}#packages.{system}.unevaluable")
    assert not result.ok
    assert result.eval_error == "fixture package deliberately does not evaluate"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://storage.googleapis.com/vendor/agent.tar.gz", Endpoint(host="storage.googleapis.com", port=443)),
        ("http://127.0.0.2:9/x", Endpoint(host="127.0.0.2", port=9)),
        ("git+https://example.org/repo.git", Endpoint(host="example.org", port=443)),
        ("ftp://ftp.example.org/pub/x", Endpoint(host="ftp.example.org", port=21)),
        ("mirror://gnu/hello/hello-2.12.tar.gz", None),
        ("file:///srv/x.tar.gz", None),
        ("http://[::1", None),
    ],
)
def test_endpoint(url, expected):
    assert endpoint(url) == expected


def test_derivations_to_build_reads_the_dry_run_listing():
    stderr = (
        "these 2 derivations will be built:\n"
        "  /nix/store/dfccbbvjc3849nnimil1401isbyb4jbp-vendor.tar.gz.drv\n"
        "  /nix/store/g1p50fcfs4ppwm7lsw84mdzz918z7ziv-fetchy.drv\n"
        "these 1 paths will be fetched (0.10 MiB download, 0.50 MiB unpacked):\n"
        "  /nix/store/4wan7n4v222bv4c4s9kv5sbzfvqk84iq-hello\n"
    )
    assert derivations_to_build(stderr) == [
        "/nix/store/dfccbbvjc3849nnimil1401isbyb4jbp-vendor.tar.gz.drv",
        "/nix/store/g1p50fcfs4ppwm7lsw84mdzz918z7ziv-fetchy.drv",
    ]
    assert derivations_to_build("this derivation will be built:\n  /nix/store/a-x.drv\n") == ["/nix/store/a-x.drv"]


def refused_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_fetch_is_fine_when_any_of_its_urls_answers():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        fetch = Fetch(
            drv="/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-src.tar.gz.drv",
            urls=(f"http://127.0.0.2:{refused_port()}/src.tar.gz", f"http://127.0.0.1:{port}/src.tar.gz"),
        )
        assert check_fetch(fetch, timeout_s=30) is None  # the listener answers at once: 30 s only stops a hang


def test_a_fetch_is_blocked_when_no_url_answers():
    fetch = Fetch(
        drv="/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-src.tar.gz.drv",
        urls=("http://127.0.0.2:9/a", f"http://localhost:{refused_port()}/b"),
    )
    blocked = check_fetch(fetch, timeout_s=30)  # both refuse at once: no wait, whatever the timeout
    assert blocked is not None
    assert blocked.hosts == ("127.0.0.2", "localhost")
    assert "add 127.0.0.2, localhost to the egress allowlist" in blocked.message


def test_a_fetch_with_no_network_url_is_not_checked():
    assert check_fetch(Fetch(drv="/nix/store/x-y.drv", urls=("mirror://gnu/x.tar.gz",))) is None


def test_without_the_preflight_nix_itself_fails_on_the_download(tmp_path, system):
    # The contrast: Nix retries the refused download before failing, and its
    # message names a URL, not what to add to the allowlist.
    junit = tmp_path / "build.xml"
    result = run_ccvm(
        "build",
        "--flake",
        flake_copy(tmp_path, "egress"),
        "--attr",
        "agent",
        "--system",
        system,
        "--no-egress-check",
        "--junit",
        str(junit),
    )
    assert result.returncode == 1
    case = read_junit(junit)[f"build.agent.{system}"]
    assert case.message == "builder for agent-vendor.tar.gz failed"
    assert "unable to download 'http://127.0.0.2:9/agent/vendor.tar.gz'" in case.details
    assert "allowlist" not in case.details


def test_a_dry_run_past_its_timeout_is_reported_as_timed_out_not_as_an_evaluation_error(tmp_path, monkeypatch, system):
    monkeypatch.setenv("NIX_CONFIG", offline_env()["NIX_CONFIG"])
    with slow_eval_flake(tmp_path) as flake:
        started = time.monotonic()
        result = preflight(find_nix(), f"{flake}#packages.{system}.waits", eval_timeout_s=2)
    assert time.monotonic() - started < FAST_S  # the command's timeout, not a fixed 120s
    assert not result.ok and result.timed_out
    assert result.message.startswith("nix build --dry-run timed out after 2s")
    assert "does not evaluate" not in result.message


def test_a_failed_preflight_says_does_not_evaluate_only_for_an_evaluation_error(tmp_path, monkeypatch, system):
    monkeypatch.setenv("NIX_CONFIG", offline_env()["NIX_CONFIG"])
    result = preflight(find_nix(), f"{flake_copy(tmp_path, 'eval-fails')}#packages.{system}.unevaluable")
    assert not result.timed_out
    assert result.message == "does not evaluate: fixture package deliberately does not evaluate"


@pytest.fixture
def hung_resolver(monkeypatch):
    """A resolver that never answers.  Mocked: this machine's DNS cannot be made slow on purpose;
    the probe's own code (the bounded lookup, the connect) runs for real."""
    release = threading.Event()

    def never_answers(*_args, **_kwargs):
        release.wait(60)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", never_answers)
    yield
    release.set()


def test_a_name_lookup_that_hangs_is_bounded_by_the_timeout(hung_resolver):
    started = time.monotonic()
    reason = unreachable_reason(Endpoint(host="cache.example.org", port=443), timeout_s=1)
    assert time.monotonic() - started < 30  # unbounded, it would wait for the resolver's 60 s: halfway to that
    assert reason == "cache.example.org:443: name did not resolve within 1s"


@pytest.fixture
def full_listener():
    """A loopback port whose accept queue is full: a further connect gets no answer and hangs."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = []
        try:
            for _ in range(4):  # enough to fill the queue; the kernel drops further SYNs
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
                fillers.append(filler)
            # The queue is full once a filler's connection is established (writable); waited for, not slept on.
            _, connected, _ = select.select([], fillers, [], 30)
            assert connected, "no connection reached the listener's queue"
            yield port
        finally:
            for filler in fillers:
                filler.close()


ADDRESSES = 60  # of one name, each hanging


def test_every_address_of_a_name_shares_one_timeout(full_listener, monkeypatch):
    # Mocked: a name resolving to several addresses that all hang; this machine has no such name.
    # The connections are real, to a loopback port whose queue is full.
    address = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", full_listener))
    monkeypatch.setattr(socket, "getaddrinfo", lambda *_a, **_k: [address] * ADDRESSES)
    started = time.monotonic()
    reason = unreachable_reason(Endpoint(host="mirror.example.org", port=full_listener), timeout_s=1)
    # 1 s for them all, not 1 s each (60 s): the bound lies halfway, so a busy host cannot tip either way.
    assert time.monotonic() - started < ADDRESSES / 2
    assert reason == f"mirror.example.org:{full_listener}: no answer within 1s"
