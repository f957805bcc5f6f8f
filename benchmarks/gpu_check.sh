#!/usr/bin/env bash
# The collection's GPU path in one go, on one GPU (meant to take under 8 minutes; each step prints
# its seconds). Every step runs even after one fails; the summary names the failures (exit 1).
#  - the CUDA tests (tests/test_gpu.py): each training script's dry run on CUDA and its
#    generator.pt2 loaded with CUDA hidden, --device cpu beside the GPU, --seed on the samples,
#    bf16 and fp16 (GradScaler) training, Ctrl-C on CUDA and an exact resume;
#  - host syncs in both DCGAN loops under torch.cuda.set_sync_debug_mode("warn");
#  - every --loss, both scripts' --arch, --fid, dcgan_mnist's --amp fp16 if it has one;
#  - images/s of the defaults, --amp fp16 and --compile beside the tutorials' own code;
#  - torchrun with 2 processes (NCCL) when 2 GPUs exist (else 1), then a resume.
#
#   bash benchmarks/gpu_check.sh              # on a CUDA machine
#   bash benchmarks/gpu_check.sh --dry-run    # the same steps, tiny, on the CPU (no GPU needed;
#                                             # the CUDA-only ones say why they are skipped)
#   FID_WEIGHTS=path/weights-inception-2015-12-05-6726825d.pth bash benchmarks/gpu_check.sh
#                                             # --fid with the real Inception weights (without
#                                             # them: random weights, the code path only)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export MPLBACKEND=Agg PYTHONUNBUFFERED=1
if [ "${1:-}" = "--dry-run" ]; then
  DRY=1 DEVICE=cpu IMAGES=256 MNIST_IMAGES=256 LOG=1 BATCH=4 FID=16 GPUS=0
else
  DRY=0 DEVICE=cuda IMAGES=8000 MNIST_IMAGES=3200 LOG=10 BATCH=64 FID=32
  GPUS=$($PY -c "import torch; print(torch.cuda.device_count())") || GPUS=0
  if [ "$GPUS" = 0 ]; then
    echo "error: no CUDA GPU visible; on a machine without one run: $0 --dry-run" >&2
    exit 2
  fi
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FAILED=()
START=$SECONDS

# step NAME COMMAND...: runs COMMAND, shows the end of its output (all of it when it fails or
# for a report) and its seconds, and remembers a failure without stopping.
step() {
  local name=$1 t=$SECONDS lines=${LINES_SHOWN:-2}
  shift
  echo "== $name"
  if "$@" >"$WORK/step.log" 2>&1; then
    if [ "$lines" = all ]; then lines=+1; fi
    tail -n "$lines" "$WORK/step.log" | sed 's/^/   /'
    echo "   ok ($((SECONDS - t)) s)"
  else
    tail -n 40 "$WORK/step.log" | sed 's/^/   /'
    echo "   FAILED ($((SECONDS - t)) s)"
    FAILED+=("$name")
  fi
}
report() { LINES_SHOWN=all step "$@"; }
skip() { echo "== $1"; echo "   skipped: $2"; }
cuda_only() {  # cuda_only NAME COMMAND...: a step that needs a GPU
  if [ "$DRY" = 1 ]; then skip "$1" "needs a CUDA GPU (this is the CPU dry run)"; else step "$@"; fi
}

echo "== machine"
$PY -c "import torch; print('torch', torch.__version__, '| cuda', torch.version.cuda, '|',
', '.join(torch.cuda.get_device_name(i) + ' (compute capability %d.%d)'
          % torch.cuda.get_device_capability(i) for i in range($GPUS)) or 'no GPU')"

$PY - "$WORK" <<'EOF'
import sys; sys.path.insert(0, "tests")
from helpers import make_image_folder, make_mnist
make_image_folder(sys.argv[1] + "/small", n=32, size=48)
make_mnist(sys.argv[1] + "/mnist", n=256)
EOF
SMALL=(--dataroot "$WORK/small" --image-size 32 --ngf 16 --ndf 16 --batch-size 8)
MNIST=(--dataroot "$WORK/mnist" --eval-samples 100)

LINES_SHOWN=6 step "the CUDA tests (tests/test_gpu.py; they skip without a GPU)" \
  $PY -m pytest -q -rs -p no:cacheprovider tests/test_gpu.py

# Host syncs: each script in this process for one epoch of 4 and of 16 batches (start-up, the
# checkpoint and the final figures cancel out), counted by CUDA's sync debug mode (every call
# that waits for the GPU, .item() and blocking copies alike) or, on the CPU, by
# tests/helpers.count_syncs (TorchDispatchMode over aten._local_scalar_dense).
cat >"$WORK/syncs.py" <<'EOF'
"""Host syncs per extra iteration of SCRIPT on DEVICE: 1-epoch runs of 4 and 16 batches, after
a first run of 4 that warms up."""
import collections
import importlib
import os
import sys
import traceback
import warnings

sys.path[:0] = [os.getcwd(), os.path.join(os.getcwd(), "tests")]
import torch  # noqa: E402

from helpers import count_syncs, in_process, make_image_folder, make_mnist  # noqa: E402

name, device, batch, work, *flags = sys.argv[1:]
main = importlib.import_module(name[:-3]).main


def cuda_syncs(*args):
    """(exit status, Counter of call sites) of the sync debug mode's warnings while main runs."""
    sites, shown = collections.Counter(), warnings.showwarning

    def count(message, category, filename, lineno, file=None, line=None):
        if "synchronizing CUDA operation" not in str(message):
            return shown(message, category, filename, lineno, file, line)
        stack = [f for f in traceback.extract_stack()[:-1] if f.filename != warnings.__file__]
        sites["".join(traceback.format_list(stack[-6:]))] += 1

    with warnings.catch_warnings():
        warnings.filterwarnings("always", message=".*synchronizing CUDA operation")
        warnings.showwarning = count
        torch.cuda.set_sync_debug_mode("warn")
        try:
            status = in_process(main, *args)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return status, sites


counted = {}
for run, batches in enumerate((4, 4, 16)):  # the first warms up (cuDNN's autotuning, ...)
    root = os.path.join(work, f"{name}-{run}")
    data = os.path.join(root, "data")
    make_mnist(data, n=batches * int(batch)) if name == "dcgan_mnist.py" else \
        make_image_folder(data, n=batches * int(batch), size=48)
    args = ["--dataroot", data, *flags, "--batch-size", batch, "--epochs", 1,
            "--device", device, "--out", os.path.join(root, "out")]
    status, counted[batches] = cuda_syncs(*args) if device == "cuda" else \
        count_syncs(in_process, main, *args)
    assert status == 0, f"{name} {' '.join(map(str, args))}: exit {status}"
per = (counted[16].total() - counted[4].total()) / 12
for site, n in (counted[16] - counted[4]).most_common(4):  # where the extra ones come from
    print(f"-- {n} more in 16 iterations than in 4 from:\n{site}")
print(f"{name} on {device}: {counted[4].total()} syncs in 4 iterations, {counted[16].total()} "
      f"in 16: {per:.2f} per extra iteration (at most 1 is the goal)")
if device == "cuda" and per > 1:
    sys.exit(f"{name}: {per:.2f} host syncs per iteration on CUDA")
if device != "cuda":
    print("(the CPU's figures are judged by tests/test_syncs.py; here they are only shown)")
EOF
step_syncs() { LINES_SHOWN=40 step "$@"; }
step_syncs "dcgan_celeba.py: host syncs per iteration on $DEVICE" \
  $PY "$WORK/syncs.py" dcgan_celeba.py $DEVICE $BATCH "$WORK" --image-size 32
step_syncs "dcgan_mnist.py: host syncs per iteration on $DEVICE" \
  $PY "$WORK/syncs.py" dcgan_mnist.py $DEVICE $BATCH "$WORK" --eval-samples 100

for loss in bce hinge wgan wgan-gp; do
  step "dcgan_celeba.py --loss $loss on $DEVICE" $PY dcgan_celeba.py --dry-run --device $DEVICE \
    "${SMALL[@]}" --loss $loss --out "$WORK/loss-$loss"
done
step "dcgan_celeba.py --arch encoder-decoder on $DEVICE" $PY dcgan_celeba.py --dry-run \
  --device $DEVICE --dataroot "$WORK/small" --image-size 64 --batch-size 8 \
  --arch encoder-decoder --out "$WORK/arch"
step "dcgan_mnist.py --arch dropout on $DEVICE" $PY dcgan_mnist.py --dry-run --device $DEVICE \
  "${MNIST[@]}" --arch dropout --out "$WORK/mnist-arch"

fid_weights() {  # the real Inception weights ($FID_WEIGHTS), else random ones (the code path)
  if [ -n "${FID_WEIGHTS:-}" ]; then echo "$FID_WEIGHTS"; return; fi
  $PY - "$WORK/inception-random.pth" <<'EOF'
import sys, torch, torch_fidelity.feature_extractor_inceptionv3 as m
m.load_state_dict_from_url = lambda *a, **k: {}  # no download: keep the random initial weights
m.FeatureExtractorInceptionV3.load_state_dict = lambda *a, **k: None
net = m.FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"])
torch.save(net.state_dict(), sys.argv[1])
EOF
  echo "$WORK/inception-random.pth"
}
if $PY -c "import torch_fidelity" 2>/dev/null; then
  weights=$(fid_weights | tail -n 1)
  [ -z "${FID_WEIGHTS:-}" ] && echo "(--fid below with random Inception weights: the code path" \
    "on $DEVICE, not a meaningful figure; set FID_WEIGHTS for the real one)"
  step "dcgan_celeba.py --fid $FID on $DEVICE" $PY dcgan_celeba.py --dry-run --device $DEVICE \
    "${SMALL[@]}" --fid $FID --fid-weights "$weights" --out "$WORK/fid"
else
  skip "dcgan_celeba.py --fid" "torch-fidelity is missing (pip install -r requirements-fid.txt)"
fi
if [ "$DRY" = 1 ]; then  # on CUDA: the benchmark's --compile variant below (a whole epoch)
  step "dcgan_celeba.py --compile on $DEVICE" $PY dcgan_celeba.py --dry-run --device $DEVICE \
    "${SMALL[@]}" --compile --out "$WORK/compile"
fi
if $PY dcgan_mnist.py --help | grep -q fp16; then
  cuda_only "dcgan_mnist.py --amp fp16 on cuda" $PY dcgan_mnist.py --dry-run --device cuda \
    "${MNIST[@]}" --amp fp16 --out "$WORK/mnist-fp16"
else
  skip "dcgan_mnist.py --amp fp16" "its --amp has no fp16 choice"
fi

VARIANTS=(--variant "--amp fp16" --variant "--compile")
[ "$DRY" = 1 ] && VARIANTS=()  # fp16 needs CUDA; compiling on the CPU: the --compile step above
report "images/s: dcgan_celeba.py against the tutorial's own code, $IMAGES JPEGs on $DEVICE" \
  $PY benchmarks/bench_celeba.py --images "$IMAGES" --device $DEVICE --log-every "$LOG" \
  "${VARIANTS[@]}"
report "images/s: dcgan_mnist.py against the cookbook's loop, $MNIST_IMAGES PNGs on $DEVICE" \
  $PY benchmarks/bench_mnist.py --images "$MNIST_IMAGES" --rounds 1

# torchrun: 2 processes (NCCL) where 2 GPUs exist, else 1; the CPU dry run: 2 gloo processes.
NPROC=$([ "$GPUS" -ge 2 ] || [ "$DRY" = 1 ] && echo 2 || echo 1)
torchrun_resume() {
  local flags=(--dataroot "$WORK/small" --image-size 32 --batch-size 8 --log-every 1
               --out "$WORK/ddp")
  $PY -m torch.distributed.run --standalone --nproc_per_node=$NPROC dcgan_celeba.py \
    "${flags[@]}" --epochs 1 --device $DEVICE | tail -n 2 || return 1
  $PY -m torch.distributed.run --standalone --nproc_per_node=$NPROC dcgan_celeba.py \
    --resume "$WORK/ddp/checkpoint.pt" --epochs 2 | tail -n 2 || return 1
  $PY -c "import torch; c = torch.load('$WORK/ddp/checkpoint.pt', weights_only=True)
assert c['epoch'] == 2 and c['world'] == $NPROC, (c['epoch'], c['world'])
print('resumed to epoch', c['epoch'], 'with', c['world'], 'processes')"
}
step "torchrun, $NPROC processes on $DEVICE, then a resume" torchrun_resume
[ "$GPUS" = 1 ] && echo "   (one GPU: torchrun with 2 processes needs 2)"

echo "== gpu_check: $((SECONDS - START)) s in all"
if [ ${#FAILED[@]} -gt 0 ]; then
  printf '   FAILED: %s\n' "${FAILED[@]}"
  exit 1
fi
echo "   all steps passed"
