#!/bin/bash
# Issue 13's GPU goals in one run on a lent device (prepared on CPU; its shapes shrink with QUICK=1
# for a dry run here). Needs only the working tree: JAX comes with the device image, and the
# models are built in-process (no data, no e5 download).
#   bash benchmarks/device_speed.sh            # on the device; JSON files land in $OUT
#   QUICK=1 OUT=/tmp/ds bash benchmarks/device_speed.sh   # CPU dry run of the same commands
# 1. mBERT-base shape, batch 32 x 128: the train step's FLOP/s as a fraction of the matmul peak,
#    float32 and bfloat16 (goal: bf16 >= 2x float32 and >= 35% of 989 TFLOP/s), and bfloat16 with
#    train.embedding_update=rows (no table-sized scatter-add in the backward pass); each with a
#    jax.profiler trace of 3 steps summarized as the ops that took the most time ("profile");
# 2. models per second with N = 1..16 models in one program (train.models_at_once), tiny shape
#    and a BERT-base-like shape at batch 8 (e5 needs the converted model: skipped when absent).
# 3. Issue 22: the study's train step padded (read every step, as before) vs packed (read at log
#    steps) vs transformers' PyTorch, e5-small's shape with random weights and the data's sentence
#    lengths (no data on the device), 40 steps each: sentences per second on the GPU.
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s)
python3 -c "import jax; print(jax.__version__, jax.devices())" > $OUT/device.txt 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> $OUT/device.txt 2>/dev/null
if [ "${QUICK:-0}" = 1 ]; then FL="--quick"; NS=1,2; SHAPES=tiny; else FL="--preset=bert-base --batch=32 --seq=128"; NS=1,2,4,8,16; SHAPES=tiny${E5:+,e5}; fi
for prec in fp32 bf16 bf16_rows; do
  flag=""; [ $prec != fp32 ] && flag=--bf16; [ $prec = bf16_rows ] && flag="--bf16 --embedding_update=rows"
  timeout 240 python3 benchmarks/flops.py $FL $flag --profile --out=$OUT/flops_gpu_$prec.json > $OUT/flops_$prec.log 2>&1
  echo "flops $prec rc $? at $(( $(date +%s) - T0 )) s" | tee -a $OUT/device.txt
done
timeout 300 python3 benchmarks/models_at_once.py --shapes=$SHAPES --ns=$NS --steps=10 ${E5:+--e5=$E5} \
    --out=$OUT/models_at_once_gpu.json > $OUT/models_at_once.log 2>&1
echo "models_at_once rc $? at $(( $(date +%s) - T0 )) s" | tee -a $OUT/device.txt
SS_STEPS=40; SS_QUICK=""; [ "${QUICK:-0}" = 1 ] && SS_STEPS=6 && SS_QUICK=--quick
timeout 420 python3 benchmarks/study_speed.py --synthetic $SS_QUICK --cores= --tasks=absa --steps=$SS_STEPS \
    --variants=padded_sync,padded,packed,packed_sync,torch --work=$OUT/study_speed_work \
    --out=$OUT/study_speed_gpu.json > $OUT/study_speed.log 2>&1
echo "study_speed rc $? at $(( $(date +%s) - T0 )) s" | tee -a $OUT/device.txt
rm -rf $OUT/study_speed_work
