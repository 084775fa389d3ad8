#!/usr/bin/env bash
# DPPSampler's runs of docs/benchmarks-sampler.md, in two lanes that can run side by side on
# two cores:   benchmarks/sampler_dpp.sh a    and    benchmarks/sampler_dpp.sh b
# then the retarget benchmark, which runs its own two processes: benchmarks/sampler_dpp.sh c
# Run from the repository root; results go to runs/sampler/dpp-*.jsonl and timing.jsonl.
# (Seeds and budgets fit one working session on a shared 2-core machine; raise --seeds for
# tighter medians. On a table, DPPSampler's CellSpace stages do not depend on the seed.)
set -euo pipefail
export OMP_NUM_THREADS=1
PY=${PY:-.venv/bin/python}
C100=cifar100:hwnb360_c100_pixel_litert_lat_ms_median
P3="--objectives error,latency,params"
case "${1:?lane a, b or c}" in
a)
  R="--results runs/sampler/dpp-a.jsonl --resume --timing-samplers="
  $PY -m benchmarks.nb201 $R $P3 --problem cifar10:raspi4 --problem $C100 \
      --problem cifar10:titan_rtx_1 --problem imagenet16-120:pixel3 --seeds 10 \
      --budgets 25,50,100 --samplers dpp-cheap
  $PY -m benchmarks.nb201 --results runs/sampler/timing.jsonl --resume \
      --problem cifar10:raspi4 --seeds 1 --budgets 200,500,1000 --samplers dpp-cheap \
      --timing-samplers dpp-cheap --timing-trials 1000
  $PY -m benchmarks.nb201 $R --problem cifar10:raspi4 --seeds 10 --samplers dpp-cheap
  $PY -m benchmarks.cellspace $R --seeds 3 --objectives error,latency \
      --objectives error,latency,params --samplers dpp-cheap,dpp-pareto
  $PY -m benchmarks.nb201 $R --problem $C100 --seeds 10 --samplers dpp-cheap
  ;;
b)
  $PY -m benchmarks.nb201 --results runs/sampler/dpp-a2.jsonl --resume --timing-samplers= \
      --problem cifar10:raspi4 --seeds 20 --first-seed 10 --samplers dpp-cheap
  ;;
c)
  # Alone on the machine, two worker processes; fresh searches the lanes above stored are reused.
  $PY -m benchmarks.retarget --seeds 10 --jobs 2 --pair titan_rtx_1:raspi4 --pair raspi4:pixel3 \
      --pair pixel3:eyeriss \
      --results runs/sampler/retarget.jsonl \
      --results runs/sampler/dpp-a.jsonl --results runs/sampler/dpp-a2.jsonl \
      --results runs/sampler/peers.jsonl --output runs/sampler/retarget.md
  ;;
esac
