#!/usr/bin/env bash
# InstaNAS against MobileNetV2 on a lent GPU machine: training on the GPU, every latency (the
# option table and the final per-image timing) on one CPU thread of that machine, which nothing
# else uses meanwhile, with the wall clock. Run from the repository root with python3 holding
# torch, torchvision and scikit-learn, and optuna importable; results go to ${OUT:-runs/insta}.
# DEVICE=cpu (or SMOKE_ONLY=1) checks the script on a machine without a GPU.
set -u
device=${DEVICE:-cuda}
out=${OUT:-runs/insta}
mkdir -p "$out"
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}.
nvidia-smi -L 2>/dev/null; nproc; lscpu | grep -E "Model name|^CPU\(s\)|Thread" || true
python3 -c "import torch, optuna; print(torch.__version__, torch.cuda.is_available(), optuna.__version__)"
# A tiny run first: it checks the CUDA paths in a minute and stops the script if they fail.
timeout 120 python3 benchmarks/instanas.py --device "$device" --clock wall --width-mult 0.25 \
  --widths 1.0 --epochs 1,1,1 --seeds 0 --upper-ends 0.8 --rounds 1 --table-rounds 1 \
  --latency-images 8 > "$out/smoke.log" 2>&1
rc=$?; echo "smoke rc $rc"; tail -n 4 "$out/smoke.log"; [ $rc -eq 0 ] || exit $rc
[ -z "${SMOKE_ONLY:-}" ] || exit 0
timeout "${MAIN_TIMEOUT:-400}" python3 benchmarks/instanas.py --device "$device" --clock wall \
  --width-mult 0.5 --widths 0.5,1.0 --epochs 2,3,10 --upper-ends 0.85,1.0 \
  --seeds 0,1,2,3,4,5 --rounds 7 --table-rounds 5 --output "$out/instanas.md" > "$out/main.log" 2>&1
rc=$?; echo "main rc $rc"; grep -v "^   {" "$out/main.log" | tail -n 60
# Fashion-MNIST at full size (50,000 training and 10,000 held-out validation images at 3x32x32),
# InstaNAS at three bounds against MobileNetV2 at four widths. The GPU machine has no Debian
# package: carry the four IDX files (30 MB) in a folder and point FASHION_ROOT at it.
[ -n "${SKIP_FASHION:-}" ] && exit 0
fashion=${FASHION_ROOT:-/usr/share/datasets/fashion-mnist}
timeout "${FASHION_TIMEOUT:-1200}" python3 benchmarks/instanas.py --device "$device" --clock wall \
  --data fashion_mnist32 --data-root "$fashion" --width-mult 0.5 --widths 0.35,0.5,0.75,1.0 \
  --epochs 2,4,10 --upper-ends 0.6,0.85,1.0 --seeds 0,1,2 --rounds 5 --table-rounds 5 \
  --output "$out/instanas-fashion.md" > "$out/fashion.log" 2>&1
rc=$?; echo "fashion rc $rc"; grep -v "^   {" "$out/fashion.log" | tail -n 60
