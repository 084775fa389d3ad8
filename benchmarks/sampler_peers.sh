#!/usr/bin/env bash
# The peers' runs of docs/benchmarks-sampler.md (they do not depend on DPPSampler's code).
# Run from the repository root; results go to runs/sampler/peers.jsonl and timing.jsonl.
# GPSampler takes seconds per trial on this machine: here it runs only the timing study.
set -euo pipefail
export OMP_NUM_THREADS=1
PY=${PY:-.venv/bin/python}
R="--results runs/sampler/peers.jsonl --resume --timing-samplers="
C100=cifar100:hwnb360_c100_pixel_litert_lat_ms_median
P3="--objectives error,latency,params"
$PY -m benchmarks.nb201 $R --problem cifar10:raspi4 --seeds 20 --samplers random,tpe,nsga2
$PY -m benchmarks.nb201 $R $P3 --problem cifar10:raspi4 --problem $C100 --seeds 10 \
    --samplers random,tpe,nsga2
$PY -m benchmarks.nb201 $R $P3 --problem cifar10:titan_rtx_1 --problem imagenet16-120:pixel3 \
    --seeds 10 --samplers random,tpe,nsga2
$PY -m benchmarks.cellspace $R --seeds 20 --objectives error,latency \
    --objectives error,latency,params --samplers random,tpe,nsga2
$PY -m benchmarks.nb201 $R --problem $C100 --seeds 10 --samplers random,tpe,nsga2
$PY -m benchmarks.nb201 --results runs/sampler/timing.jsonl --resume \
    --problem cifar10:raspi4 --seeds 1 --budgets 200,500,1000 --samplers gp \
    --timing-samplers gp --timing-trials 1000
