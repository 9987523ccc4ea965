#!/usr/bin/env bash
# The README's main job, as written, in a fresh virtualenv holding only what that command installs, with an
# empty PREFDATA_HOME (so the embedded model is fetched and converted too). The command is read from the
# README itself (the first ```bash block under "## On a fresh machine"), so the two cannot drift apart.
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=$(awk '/^## On a fresh machine/{s=1} s&&/^```bash/{b=1;next} b&&/^```/{exit} b{print}' README.md)
[ -n "$cmd" ] || { echo "ci/main_job.sh: no command found under '## On a fresh machine' in README.md"; exit 1; }
venv=$(mktemp -d)/venv
# PREFDATA_HOME starts empty; with PREFDATA_MAIN_JOB_HOME set (by .ci/run) it is kept afterwards, so the tests can
# start from its request cache instead of sending the quickstart's requests again.
home=${PREFDATA_MAIN_JOB_HOME:-$(mktemp -d)}
rm -rf "$home" && mkdir -p "$home"
python3 -m venv "$venv"
. "$venv/bin/activate"
python -m pip install --quiet --upgrade pip
rm -rf out/quickstart
echo "main job: $cmd"
start=$(date +%s)
PREFDATA_HOME="$home" bash -euo pipefail -c "$cmd"
echo "main job: finished in $(( $(date +%s) - start )) s"
python -c "import pyarrow.parquet as pq; print('main job: out/quickstart/data.parquet holds', pq.read_metadata('out/quickstart/data.parquet').num_rows, 'pairs')"
test -f out/quickstart/README.md
deactivate
rm -rf "$venv"
[ -n "${PREFDATA_MAIN_JOB_HOME:-}" ] || rm -rf "$home"
