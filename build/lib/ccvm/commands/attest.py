"""ccvm attest: record a person's check of what cannot be automated."""

from __future__ import annotations

import argparse

from ccvm.ci import attest, gitchange


def register(sub: argparse._SubParsersAction) -> None:
    steps = "; ".join(f"{kind}: {what}" for kind, what in attest.KINDS.items())
    parser = sub.add_parser(
        "attest",
        help="record that you checked by hand what the gate cannot automate",
        description="Record an attestation for the working tree exactly as it is now (uncommitted and untracked "
        "files included): who (git config user.name/user.email), when, your note and the tree's hash. "
        "It is kept under the git directory, never committed, and goes stale when the tree changes. "
        f"Before attesting -- {steps}.",
    )
    parser.add_argument("kind", choices=sorted(attest.KINDS), help="what you checked")
    parser.add_argument("--note", required=True, help="what you did and saw, in a sentence")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    root = gitchange.repo_root()
    attestation, path = attest.record(root, args.kind, args.note)
    print(
        f"recorded {args.kind} attestation by {attestation.name} <{attestation.email}> "
        f"for tree {attestation.tree[:12]}: {path}"
    )
    print("it goes stale as soon as the tree changes; attest again after further edits")
    return 0
