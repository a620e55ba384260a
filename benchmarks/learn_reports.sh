#!/usr/bin/env bash
# `chatrec learn` (ranking policy) on simulated logs, next to what the simulated customers' own
# accept model says of each decision: a candidate learned from the logged accepts, and one
# learned from shuffled accepts (a deliberately worse candidate).
#
#   benchmarks/learn_reports.sh ROUNDS OUT_FILE     e.g. 10 benchmarks/results/learn_ranking_reports.txt
#
# The logs: the 64 demo customers for ROUNDS rounds, shown the fused order explored with epsilon
# 0.1 (benchmarks/simulate_feedback.py --fusion-explore 0.1, seed 200).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:?rounds}
out=${2:?output file}
py=${PYTHON:-.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HF_HUB_OFFLINE=1
start=$(date +%s)
"$py" benchmarks/simulate_feedback.py --arms fusion,bandit --seeds 1 --first-seed 200 --rounds "$rounds" \
    --fusion-explore 0.1 --keep "$work" --out "$work/sim" >/dev/null
{
    echo "# chatrec learn (ranking policy) on simulated logs, and what the customers' accept model says"
    echo
    echo "benchmarks/learn_reports.sh $rounds $out   # $(date -u +%F), $(nproc)-core machine"
    echo "(the fused order explored with epsilon 0.1 for $rounds rounds of the 64 demo customers)"
    for v in good shuffled; do
        mkdir -p "$work/$v"
        cp "$work/fusion-200.sqlite3" "$work/$v/chatrec.sqlite3"
        flag=""
        [ "$v" = shuffled ] && flag="--shuffle-rewards"
        echo
        echo "\$ chatrec learn $flag"
        "$py" -m chatrec --data-dir "$work/$v" learn $flag
        echo "\$ python benchmarks/gate_truth.py STORE v0001"
        "$py" benchmarks/gate_truth.py "$work/$v/chatrec.sqlite3" v0001
    done
    echo
    echo "wall time $(( $(date +%s) - start )) s"
} 2>&1 | grep -v -i -e "warn" -e "kernels" -e "Loading weights" | tee "$out"
