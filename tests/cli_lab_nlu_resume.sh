#!/usr/bin/env bash
# balora lab, encoder arm (--preset nlu-mini): SIGTERM or SIGINT at random moments stops after the
# current training step or run (exit 143 / 130); the masked-LM pre-training and each finished
# fine-tuning run stay in OUT/runs; the same command again skips them and writes an nlu_results.json
# whose every metric, loss curve and t-SNE map equals an uninterrupted job's (timings and the start
# time left out). Another --seeds refuses the kept runs, naming the field. Self-contained.
. "$(dirname "$0")/shlib.sh"
args=(lab --preset nlu-mini --seeds 16 --threads 1)
report=nlu_results.json; runs_re='^nlu_ft_\|^nlu_pretrain'; fingerprint=nlu.json
. "$(dirname "$0")/lab_trial.sh"
lab_reference
n_runs=$(ls "$tmp/ref/runs" | grep -c "$runs_re")
check "every run is kept in runs/ (got $n_runs)" '[ "$n_runs" -eq $((1 + 4 * 16)) ]'
check "the comparison can fail (the reference against the report of another --seeds)" \
  '"$CLI" lab --preset nlu-mini --seeds 2 --threads 1 --out "$tmp/two" >/dev/null 2>&1 && ! same_results "$tmp/two"'
# moments spread over the job: early ones land in the pre-training, later ones among the fine-tuning runs
for i in 1 2 3 4 5; do
  sig=TERM; [ $i -eq 3 ] && sig=INT
  trial "t$i" $sig "$(moment 0.05)"
done
check "at least one job was interrupted mid-way ($n_interrupted)" '[ $n_interrupted -gt 0 ]'
finish
