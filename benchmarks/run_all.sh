#!/usr/bin/env bash
# Run every benchmark, one after the other (they time CPU work: never run two at once).
# Each rewrites its own section of benchmarks/RESULTS.md. Takes about 35 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
for name in accuracy language_id overhead startup hallucination transducer_loss; do
    echo "== benchmarks/$name.py"
    "$PY" "benchmarks/$name.py"
done
