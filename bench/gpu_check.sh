#!/usr/bin/env bash
# What a CPU-only machine cannot show, as one run on a CUDA machine (README, Another model,
# or a GPU): the fast tests on CUDA, one round of the real stage code through `dvc repro`
# (bench/tiny_round.py), and the engine's throughput.
#
#   bash bench/gpu_check.sh                      # throughput of the embedded model
#   THROUGHPUT_ARGS="--model DIR --random-weights" bash bench/gpu_check.sh
#       # DIR: a config and tokenizer only (random weights of that shape), where the
#       # weights cannot be copied to the GPU machine
#
# Each step has its own time limit in seconds (FAST_TESTS_S, ROUND_S, THROUGHPUT_S), so a
# step that hangs leaves the others their time. Logs go to $GPU_CHECK_OUT (gpu-check/).
set -u
cd "$(dirname "$0")/.."
py=${PYTHON:-python}
out=${GPU_CHECK_OUT:-gpu-check}
mkdir -p "$out"
step() { echo "::: $(date +%T) $*"; }

step machine
"$py" -c "import json; from pipeline.machine import machine; print(json.dumps(machine()))" |
  tee "$out/machine.json"

step "fast tests (log: $out/fast-tests.log)"
timeout "${FAST_TESTS_S:-300}" "$py" -m pytest -m "not slow" -q -p no:cacheprovider \
  >"$out/fast-tests.log" 2>&1
echo "exit $?"
grep -E "^(FAILED|ERROR)|passed|failed" "$out/fast-tests.log" | tail -12

step "one round through dvc repro (log: $out/round.log)"
timeout "${ROUND_S:-300}" "$py" bench/tiny_round.py >"$out/round.log" 2>&1
echo "exit $?"
grep -E "^(dvc repro|round|r[0-9]|median)|error" "$out/round.log"

for batch in ${BATCHES:-64 240}; do
  step "engine throughput, batch $batch (log: $out/throughput-$batch.log)"
  # shellcheck disable=SC2086  # THROUGHPUT_ARGS is a list of arguments
  timeout "${THROUGHPUT_S:-180}" "$py" bench/engine_throughput.py ${THROUGHPUT_ARGS:-} \
    --prompts "$batch" --batch-size "$batch" --naive-prompts 8 >"$out/throughput-$batch.log" 2>&1
  echo "exit $?"
  sed -n '/^{/,/^}/p' "$out/throughput-$batch.log"
done
step done
