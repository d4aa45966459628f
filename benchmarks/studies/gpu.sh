#!/bin/bash
# Larger versions of the studies for a lent GPU machine (one GPU, 16 CPU cores), each job sized
# for one 10-minute device call (run from the repository root):
#
#   bash benchmarks/studies/gpu.sh haystack SEED   # the paper's haystack size; 5 arms in parallel
#   bash benchmarks/studies/gpu.sh ladder SEED     # widths 32-128, 4 layers, 5 sizes in parallel
#
# Results (CSV, PNG, one log per process) go to ${OUT:-/tmp/gpu-out}/<job>-s<SEED>/. Set
# MIXOPT_CORPUS_DIR to corpora saved with `python benchmarks/studies/common.py DIR` so that the
# ladder trains on the same prose and Python text as on the machine that saved them. Small models
# are launch-bound on a GPU (about 12 ms a step with 3-4 processes, 38 ms with 10: session 2).
# DEVICE=cpu runs the same jobs on the CPU (slowly).
set -euo pipefail
job=${1:?usage: gpu.sh haystack|ladder SEED}
seed=${2:-0}
out=${OUT:-/tmp/gpu-out}/$job-s$seed
mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MPLBACKEND=Agg
py=${PYTHON:-python3}
case $job in
haystack)  # arXiv 2601.21725 diagnostic: 30 pairs, batch 1,000, 10k steps, lr 1e-3 cosine
    # stage one once (issue 20's recipe: Dyck k = 16, length 64, constant lr 1e-3, wd 0.1, until
    # closer accuracy 0.9 or 0.1 nat from the entropy floor), cached; then the arms in parallel
    common=(--device "${DEVICE:-cuda}" --seeds 1 --first-seed "$seed" --n-jobs 1 --n-pairs 30
            --length 64 --n-values "${N_VALUES:-127}" --batch 1000 --steps 10000 --lr 1e-3
            --eval-every 1000 --eval-rows 2000 --cache "$out/cache")
    timeout 300 "$py" benchmarks/studies/haystack_warmup.py "${common[@]}" --arms attention \
        --steps 0 --out "$out/source" > "$out/source.log" 2>&1
    for arm in scratch attention attention+norms mlp all; do
        timeout 560 "$py" benchmarks/studies/haystack_warmup.py "${common[@]}" --arms "$arm" \
            --out "$out/$arm" > "$out/$arm.log" 2>&1 &
    done
    wait
    "$py" benchmarks/studies/haystack_warmup.py --merge "$out"/scratch "$out"/attention \
        "$out"/attention+norms "$out"/mlp "$out"/all --out "$out" > "$out/merge.log" 2>&1 ;;
ladder)  # heads of width 16; N (non-embedding) from 50k to 790k
    timeout 560 "$py" benchmarks/studies/ladder.py --device "${DEVICE:-cuda}" --no-fit --seeds 1 \
        --first-seed "$seed" --n-jobs 5 --widths 32 48 64 96 128 --n-layers 4 --head-dim 16 \
        --length 128 --batch 32 --lr 2e-3 --pre-steps 1200 --checkpoints 0 300 600 1200 \
        --cont-steps 600 --cont-evals 0 50 100 200 400 600 --eval-batches 8 \
        --out "$out" > "$out/ladder.log" 2>&1 ;;
*)
    echo "unknown job $job (haystack or ladder)" >&2; exit 2 ;;
esac
