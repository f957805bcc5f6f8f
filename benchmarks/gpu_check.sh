#!/usr/bin/env bash
# The collection's GPU path in one go (about 6 minutes on one H100): the CUDA tests, each training
# script's dry run on CUDA, dcgan_celeba.py on ~20,000 CelebA-sized JPEGs with its defaults,
# --amp fp16 and --compile beside the tutorial's own code (images/s side by side), and torchrun
# with NCCL and a resume.
#
#   bash benchmarks/gpu_check.sh              # on a CUDA machine
#   bash benchmarks/gpu_check.sh --dry-run    # the same steps, tiny, on the CPU (no GPU needed)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
DEVICE=cuda IMAGES=20000 LOG=20 VARIANTS=(--variant "--amp fp16" --variant "--compile")
if [ "${1:-}" = "--dry-run" ]; then
  DEVICE=cpu IMAGES=512 LOG=1 VARIANTS=()
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "== machine"
$PY -c "import torch; print('torch', torch.__version__, '| cuda', torch.version.cuda, '|',
torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"

echo "== the CUDA tests (skipped without a GPU)"
$PY -m pytest -q tests/test_gpu.py

echo "== every training script's dry run on $DEVICE"
$PY - "$WORK" <<'EOF'
import sys; sys.path.insert(0, "tests")
from helpers import make_image_folder, make_mnist
make_image_folder(sys.argv[1] + "/small", n=32, size=48)
make_mnist(sys.argv[1] + "/mnist", n=256)
EOF
$PY exponential_gan.py --dry-run --device "$DEVICE" --out "$WORK/e" | tail -1
$PY sequence_gan.py --dry-run --device "$DEVICE" --out "$WORK/s" | tail -1
$PY dcgan_mnist.py --dry-run --device "$DEVICE" --dataroot "$WORK/mnist" --out "$WORK/m" | tail -1
$PY dcgan_celeba.py --dry-run --device "$DEVICE" --dataroot "$WORK/small" --image-size 32 \
  --out "$WORK/c" | tail -1

echo "== dcgan_celeba.py against the tutorial's own code, $IMAGES JPEGs at 64 px on $DEVICE"
$PY benchmarks/bench_celeba.py --images "$IMAGES" --device "$DEVICE" --log-every "$LOG" \
  "${VARIANTS[@]}"

echo "== torchrun, one process ($([ "$DEVICE" = cuda ] && echo NCCL || echo gloo)), then a resume"
FLAGS=(--dataroot "$WORK/small" --image-size 32 --batch-size 8 --log-every 1 --out "$WORK/ddp")
$PY -m torch.distributed.run --standalone --nproc_per_node=1 dcgan_celeba.py "${FLAGS[@]}" \
  --epochs 1 --device "$DEVICE" | tail -2
$PY -m torch.distributed.run --standalone --nproc_per_node=1 dcgan_celeba.py \
  --resume "$WORK/ddp/checkpoint.pt" --epochs 2 | tail -2
$PY -c "import torch; c = torch.load('$WORK/ddp/checkpoint.pt', weights_only=True); \
assert c['epoch'] == 2 and c['world'] == 1, c['epoch']; print('resumed to epoch', c['epoch'])"
echo "== gpu_check: all steps passed"
