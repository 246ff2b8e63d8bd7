#!/usr/bin/env bash
# What a CPU-only machine cannot show, as one run on a CUDA machine (README, Another model,
# or a GPU): the fast tests on CUDA, one round of the real stage code through `dvc repro`
# (bench/tiny_round.py), the engine's throughput, and optionally a real campaign.
#
#   bash bench/gpu_check.sh                      # throughput of the embedded model
#   THROUGHPUT_ARGS="--model DIR --random-weights" bash bench/gpu_check.sh
#       # DIR: a config and tokenizer only (random weights of that shape), where the
#       # weights cannot be copied to the GPU machine
#   CAMPAIGN=safety CAMPAIGN_S=400 bash bench/gpu_check.sh
#       # also the safety profile's campaign on the embedded model (or MODEL), 3 rounds
#       # (CAMPAIGN_ROUNDS), stopped after CAMPAIGN_S seconds: its stage times and rounds
#   CAMPAIGN=safety-judge SETS="engine.batch_size=256 build_prefs.min_margin=0.2" ...
#       # params on top of the profile, each as `dvc exp run -S` takes it
#
# Each step has its own time limit in seconds (FAST_TESTS_S, ROUND_S, THROUGHPUT_S,
# CAMPAIGN_S), so a step that hangs leaves the others their time; SKIP="tests round" skips
# steps by name; TESTS replaces the fast tests' pytest arguments; REPEAT times the engine
# that many times per batch size. Logs go to $GPU_CHECK_OUT (gpu-check/), the campaign's
# workspace to $CAMPAIGN_DIR ($GPU_CHECK_OUT/campaign).
set -u
cd "$(dirname "$0")/.."
py=${PYTHON:-python}
out=${GPU_CHECK_OUT:-gpu-check}
mkdir -p "$out"
step() { echo "::: $(date +%T) $*"; }
skipped() { [[ " ${SKIP:-} " == *" $1 "* ]]; }

step machine
"$py" -c "import json; from pipeline.machine import machine; print(json.dumps(machine()))" |
  tee "$out/machine.json"

if ! skipped tests; then
  step "fast tests (log: $out/fast-tests.log)"
  # shellcheck disable=SC2086  # TESTS is a list of arguments
  timeout "${FAST_TESTS_S:-300}" "$py" -m pytest -q -p no:cacheprovider ${TESTS:--m "not slow"} \
    >"$out/fast-tests.log" 2>&1
  echo "exit $?"
  grep -E "^(FAILED|ERROR)|passed|failed" "$out/fast-tests.log" | tail -12
fi

if ! skipped round; then
  step "one round through dvc repro (log: $out/round.log)"
  timeout "${ROUND_S:-300}" "$py" bench/tiny_round.py >"$out/round.log" 2>&1
  echo "exit $?"
  grep -E "^(dvc repro|round|r[0-9]|median)|error" "$out/round.log"
fi

if ! skipped throughput; then
  for batch in ${BATCHES:-64 240}; do
    step "engine throughput, batch $batch (log: $out/throughput-$batch.log)"
    # shellcheck disable=SC2086  # THROUGHPUT_ARGS is a list of arguments
    timeout "${THROUGHPUT_S:-180}" "$py" bench/engine_throughput.py ${THROUGHPUT_ARGS:-} \
      --prompts "$batch" --batch-size "$batch" --naive-prompts 8 --repeat "${REPEAT:-1}" \
      >"$out/throughput-$batch.log" 2>&1
    echo "exit $?"
    sed -n '/^{/,/^}/p' "$out/throughput-$batch.log" | tr -s '\n ' ' ' && echo
  done
fi

if [ -n "${CAMPAIGN:-}" ]; then
  campaign_dir=${CAMPAIGN_DIR:-$out/campaign}
  step "campaign $CAMPAIGN (log: $out/campaign.log, workspace: $campaign_dir/ws)"
  rm -rf "$campaign_dir"
  sets=()
  for s in ${SETS:-}; do sets+=(-S "$s"); done
  "$py" bench/tiny_round.py "${sets[@]}" --model "${MODEL:-embedded:smollm2-135m-instruct}" \
    --profile "$CAMPAIGN" --rounds "${CAMPAIGN_ROUNDS:-3}" --time-limit "${CAMPAIGN_S:-600}" \
    --dir "$campaign_dir" >"$out/campaign.log" 2>&1
  echo "exit $?"
  grep -E "^(dvc repro|round|r[0-9]|median)|@r[0-9]+: |error" "$out/campaign.log" | cut -c1-400
fi
step done
