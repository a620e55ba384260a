"""What the simulated customers' own accept model says of a ranking gate's decision.

Given a store that ``chatrec learn`` ran on (simulated logs: ``simulate_feedback.py --keep``), the
expected accepts per new logged slate (the ones the gate cross-fitted on) of the policy that was
current and of the candidate it built, by :func:`simulate_feedback.true_value` (the off-policy
estimates try to tell this without knowing the customers):

    python benchmarks/gate_truth.py STATE_DIR/chatrec.sqlite3 v0001 [--current v0000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from simulate_feedback import Customer, true_value  # noqa: E402

from chatrec.kb import load_kb  # noqa: E402
from chatrec.store.sqlite import SQLiteStore  # noqa: E402
from chatrec.turn.policy import UNTRAINED, BanditPolicy, PolicyStore  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("store")
    ap.add_argument("candidate", help="the candidate's version")
    ap.add_argument("--current", default=UNTRAINED, help="the version that was current [untrained]")
    args = ap.parse_args()
    kb = load_kb(REPO / "kb")
    versions = PolicyStore(SQLiteStore(args.store))
    current = BanditPolicy() if args.current == UNTRAINED else versions.load(args.current)
    candidate = versions.load(args.candidate)
    held = [r for r in versions.store.ranking_log(0) if int(r["turn_id"]) > current.learned_turn]
    customers: dict[str, Customer] = {}
    value = {}
    for name, policy in (("current", current), ("candidate", candidate)):
        total = 0.0
        for rec in held:
            user = rec["context"]["user"]
            total += true_value(kb, customers.setdefault(user, Customer(kb, user)), policy, rec)
        value[name] = total / len(held)
    print(
        f"expected accepts per new logged slate ({len(held)} slates), by the customers' accept model: "
        f"current {value['current']:.3f}, candidate {value['candidate']:.3f}, "
        f"candidate - current {value['candidate'] - value['current']:+.3f}"
    )


if __name__ == "__main__":
    main()
