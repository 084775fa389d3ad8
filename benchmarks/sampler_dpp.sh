#!/usr/bin/env bash
# DPPSampler's runs of docs/benchmarks-sampler.md, in two lanes that can run side by side:
#   benchmarks/sampler_dpp.sh a    and    benchmarks/sampler_dpp.sh b
# Run from the repository root; results go to runs/sampler/dpp-*.jsonl.
set -euo pipefail
export OMP_NUM_THREADS=1
PY=${PY:-.venv/bin/python}
C100=cifar100:hwnb360_c100_pixel_litert_lat_ms_median
P3="--objectives error,latency,params"
case "${1:?lane a or b}" in
a)
  R="--results runs/sampler/dpp-a.jsonl --resume --timing-samplers="
  $PY -m benchmarks.nb201 $R --problem cifar10:raspi4 --seeds 20 --samplers dpp-cheap
  $PY -m benchmarks.nb201 $R $P3 --problem cifar10:raspi4 --seeds 10 --budgets 25,50,100 \
      --samplers dpp-cheap
  $PY -m benchmarks.nb201 $R $P3 --problem $C100 --seeds 10 --budgets 25,50,100 \
      --samplers dpp-cheap
  $PY -m benchmarks.cellspace $R --seeds 20 --objectives error,latency \
      --samplers dpp-cheap,dpp-pareto
  $PY -m benchmarks.cellspace $R --seeds 20 --objectives error,latency,params \
      --samplers dpp-pareto
  $PY -m benchmarks.nb201 $R --problem cifar10:raspi4 --seeds 10 --budgets 25,50,100 \
      --samplers dpp
  ;;
b)
  R="--results runs/sampler/dpp-b.jsonl --resume --timing-samplers="
  $PY -m benchmarks.nb201 $R --problem $C100 --seeds 10 --samplers dpp-cheap
  # The fresh searches on Raspberry Pi 4 are lane a's first runs (seeds 0-9 are read from
  # its results file when they are there; missing ones are run here).
  $PY -m benchmarks.retarget --seeds 10 --results runs/sampler/retarget.jsonl \
      --results runs/sampler/dpp-a.jsonl --results runs/sampler/peers.jsonl \
      --output runs/sampler/retarget.md
  $PY -m benchmarks.nb201 --results runs/sampler/timing.jsonl --resume \
      --problem cifar10:raspi4 --seeds 1 --budgets 200,500,1000 --samplers dpp-cheap \
      --timing-samplers dpp-cheap --timing-trials 1000
  # Three objectives through qLogNEHVI stages take minutes per run; on a table DPPSampler's
  # CellSpace stages are deterministic (every seed gives the same run): one seed shows it.
  $PY -m benchmarks.cellspace $R --seeds 1 --objectives error,latency,params \
      --samplers dpp-cheap
  ;;
esac
