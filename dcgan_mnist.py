"""DCGAN on MNIST digits: the cookbook's DCGAN recipes, and the PNG-folder DCGAN tutorial.

Trains a deep convolutional GAN that draws 28x28 handwritten digits (or Fashion-MNIST clothes,
or any folder of small grey images). It follows two tutorials, in order and under their names:
- the cookbook chapter "Exploring Generative Adversarial Networks": its recipes "Creating a
  DCGAN generator", "Creating a DCGAN discriminator", "Training the DCGAN model" and
  "Visualizing DCGAN results" (`--arch cookbook`, the default), and
- "How to build a DCGAN with PyTorch" (Towards Data Science),
  https://towardsdatascience.com/how-to-build-a-dcgan-with-pytorch-31bfbf2ad96a : MNIST as PNG
  folders read with ImageFolder and a DataLoader (`--dataset folder --no-decode-once`), and its
  networks (`--arch dropout`: 16-d noise, a dropout discriminator, a `--batchnorm` switch).

    python dcgan_mnist.py                               # MNIST, downloaded into data/
    python dcgan_mnist.py --tutorial                    # the cookbook's exact settings
    python dcgan_mnist.py --dataset folder --dataroot data/mnist_png/training --arch dropout
    python dcgan_mnist.py --conditional                 # one row per digit in the grids
    python dcgan_mnist.py --resume outputs/dcgan_mnist/checkpoint.pt --epochs 60
    python dcgan_mnist.py --generate outputs/dcgan_mnist/generator.pt2 --label 7

Writes to --out (default outputs/dcgan_mnist): generator.pt2 (torch.export, input (N, z_dim)
standard normal noise [and (N,) labels], output (N, 1, 28, 28) in [-1, 1]; anywhere:
torch.export.load(path).module(), load only files you trust), checkpoint.pt (every epoch and on
Ctrl-C; --resume continues exactly), metrics.csv, losses.png, fake_iter_*.png (the fixed-noise
grids of image_list), fake_samples.png, progress.gif, real_vs_fake.png. With labelled data each
epoch's quality is measured by a small classifier: classes drawn, most/least frequent class
ratio, confidence and the Frechet distance in its features (FID's formula).

What differs from the tutorials and why:
- D returns logits and the loss is BCEWithLogitsLoss: BCELoss after a sigmoid, in one
  numerically stable op that is also safe under bf16 autocast.
- Defaults: batch 64 (twice the updates), Adam beta1 0.5 (the DCGAN paper), real label 0.9
  (one-sided label smoothing) and samples from a bias-corrected moving average of G's weights
  (--ema). Measured on 10 epochs x 5,000 real MNIST digits, seeds 999, 2, 3, 4, by the
  classifier below: all 10 digits, most/least frequent class 2.7-3.0, Frechet 16-20 (real
  digits against real: 3.2). `--tutorial` restores the cookbook's batch 128, Adam defaults,
  labels 1/0, G itself and float32.
- `--g-updates N`: the cookbook's "There's more" (train G two or three times per D step).
- Data are decoded once into one uint8 tensor and batches are cut from it on the device (the
  tutorials decode every PNG in DataLoader workers every epoch, which on a small CPU competes
  with training); `--no-decode-once` runs the tutorial's ImageFolder + DataLoader.
- bf16 autocast on GPUs and on CPUs with bf16 instructions (set up once on the models' forward
  passes) and G's weights channels-last: together 1.45x the images/s of float32 on a 2-core
  CPU; checkpoint.pt every epoch and on Ctrl-C; --resume ends exactly where one run would.
- The quality classifier is ours (a small CNN, one pass over up to 19,200 real images): the
  tutorials judge by eye.
- Samples, grids, quality figures and the export come from an eval-mode copy of G (or of its
  average) whose batch-norm statistics are recomputed for its own weights (see
  sampling_copy), so a sample does not depend on the other images in its batch, and the
  statistics fit the weights: over the 4 seeds above this alone took the Frechet distance
  from 24-38 to 16-20.

Copy this file together with common.py.
"""
import argparse
import contextlib
import copy
import functools
import gzip
import io
import itertools
import math
import os
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
import torchvision
import torchvision.transforms as transforms
import torchvision.utils as vutils
from PIL import Image
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder

from common import (ArgumentParser, MetricsCSV, StopOnCtrlC, atomic_save, export_generator,
                    fail, format_eta, frechet_distance, gaussian_stats, given_flags,
                    ignore_signals, int_range, load_checkpoint, load_generator,
                    parse_with_tutorial, pick_device, positive_float, positive_int, prepare_out,
                    resume_args, rng_state, run, seed_int, set_rng_state, set_seed,
                    command_line, unit_interval, use_agg_unless)

SCRIPT = "dcgan_mnist"
IMAGE_SIZE = 28
ARCH_Z_DIM = {"cookbook": 100, "dropout": 16}  # the cookbook: z_dim 100; the PNG tutorial: 16
# --tutorial: the cookbook's own settings (Adam's defaults, batch 128, labels 1 and 0, G itself,
# the DataLoader over files every epoch)
TUTORIAL_SETTINGS = {"batch_size": 128, "lr": 1e-3, "lr_d": 1e-3, "beta1": 0.9,
                     "real_label": 1.0, "ema": 0.0, "decode_once": False, "amp": False,
                     "channels_last": False}
# What --resume may change; everything else comes from the checkpoint.
MAY_CHANGE = ("epochs", "workers", "device", "log_every", "sample_every", "eval",
              "eval_samples", "show", "dry_run", "download", "overwrite", "out")


# -- 1. Arguments -----------------------------------------------------------------------------
def build_parser():
    p = ArgumentParser(description="DCGAN on MNIST, Fashion-MNIST or a folder of images: the "
                       "cookbook's DCGAN recipes and the PNG-folder DCGAN tutorial.")
    g = p.add_argument_group("the tutorials' inputs")
    g.add_argument("--arch", choices=sorted(ARCH_Z_DIM), default="cookbook",
                   help="cookbook: Generator_model/Discriminator_model; dropout: the PNG-folder "
                   "tutorial's Generator/Discriminator (16-d noise, dropout in D)")
    g.add_argument("--z-dim", type=int_range(1, 1024), default=None,
                   help="noise size (default: 100 for cookbook, 16 for dropout)")
    g.add_argument("--batchnorm", action=argparse.BooleanOptionalAction, default=True,
                   help="--arch dropout: batch norm in the generator (the tutorial's switch)")
    g.add_argument("--epochs", type=int_range(1, 10000), default=50, help="num_epochs")
    # Better than the cookbook (10 epochs x 5,000 real digits, 4 seeds; benchmarks/README.md):
    # batch 64 (twice the updates per epoch), beta1 0.5, real label 0.9, the --ema average.
    g.add_argument("--batch-size", type=int_range(2, 4096), default=64,
                   help="images per step, at least 2 for batch norm (cookbook: 128)")
    g.add_argument("--lr", type=positive_float, default=1e-3,
                   help="goptimizer's learning rate (cookbook: Adam's default 1e-3)")
    g.add_argument("--lr-d", type=positive_float, default=None,
                   help="doptimizer's learning rate (default: --lr)")
    g.add_argument("--beta1", type=unit_interval, default=0.5, help="Adam beta1 (cookbook: 0.9)")
    g.add_argument("--real-label", type=float_unit, default=0.9,
                   help="real_label: D's target for real images; < 1 is one-sided label "
                   "smoothing (cookbook: 1)")
    g.add_argument("--g-updates", type=int_range(1, 5), default=1,
                   help="generator steps per discriminator step (the cookbook's \"There's "
                   "more\": two or three)")
    g.add_argument("--tutorial", action="store_true",
                   help="the cookbook's exact settings: " + " ".join(
                       ("--" if v else "--no-") + k.replace("_", "-") if isinstance(v, bool)
                       else f"--{k.replace('_', '-')} {v}" for k, v in TUTORIAL_SETTINGS.items()))
    g = p.add_argument_group("data and speed")
    g.add_argument("--dataset", choices=["mnist", "fashion-mnist", "folder"], default="mnist",
                   help="torchvision MNIST / FashionMNIST under --dataroot, or an image folder "
                   "(class subfolders as mnist_png/training, or a flat folder = one class)")
    g.add_argument("--dataroot", default="data", help="where the data are (or go)")
    g.add_argument("--download", action=argparse.BooleanOptionalAction, default=True,
                   help="download MNIST/Fashion-MNIST into --dataroot when missing")
    g.add_argument("--subset", type=positive_int, default=None,
                   help="train on a fixed random subset of this many images (default: all)")
    g.add_argument("--decode-once", action=argparse.BooleanOptionalAction, default=True,
                   help="decode the images once into one tensor and cut batches from it; "
                   "--no-decode-once: the tutorials' DataLoader decodes files every epoch")
    g.add_argument("--workers", type=int_range(0, 64), default=2,
                   help="DataLoader worker processes (num_workers)")
    g.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                   help="bf16 autocast on CUDA and on CPUs with bf16 instructions (else off)")
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                   help="G's weights in NHWC, which fast (transposed) convolution kernels prefer")
    g = p.add_argument_group("extras")
    g.add_argument("--conditional", action="store_true",
                   help="class-conditional GAN: a label embedding into G and D (needs labels)")
    g.add_argument("--ema", type=unit_interval, default=0.995,
                   help="samples, grids, quality figures and generator.pt2 come from a moving "
                   "average of G's weights with this decay (bias-corrected); 0: G itself")
    g = p.add_argument_group("evaluation")
    g.add_argument("--eval", action=argparse.BooleanOptionalAction, default=None,
                   help="measure sample quality after every epoch (default: on with labelled "
                   "data, off with --dry-run)")
    g.add_argument("--eval-samples", type=int_range(100, 20000), default=5000,
                   help="generated images per quality measurement")
    g.add_argument("--log-every", type=positive_int, default=50,
                   help="stats line and loss record every N iterations of an epoch")
    g.add_argument("--sample-every", type=positive_int, default=500,
                   help="fixed-noise grid into image_list every N iterations (and at the end)")
    g = p.add_argument_group("run control")
    g.add_argument("--seed", type=seed_int, default=999, help="random seed")
    g.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto",
                   help="auto picks cuda, then mps, then cpu")
    g.add_argument("--out", default="outputs/dcgan_mnist", help="folder for everything written")
    g.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out")
    g.add_argument("--resume", metavar="PATH",
                   help="continue the run in this checkpoint.pt (its settings and --out)")
    g.add_argument("--dry-run", action="store_true",
                   help="one training iteration, then write every output file")
    g.add_argument("--show", action="store_true", help="also show the figures in windows")
    g.add_argument("--generate", metavar="PATH",
                   help="no training: draw samples from a generator.pt2 this script wrote")
    g.add_argument("--num-samples", type=int_range(1, 10000), default=64,
                   help="images for --generate")
    g.add_argument("--label", type=int_range(0, 9999), default=None,
                   help="with --generate and a conditional generator: the class to draw")
    return p


def float_unit(text):
    """argparse type: a number in (0, 1]."""
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def parse_args(parser, argv):
    args = parse_with_tutorial(parser, argv, TUTORIAL_SETTINGS)
    if args.resume:  # the run it names: its data, sizes and --out; only MAY_CHANGE flags change
        saved = dict(load_checkpoint(args.resume, SCRIPT)["args"])
        saved["out"] = os.path.dirname(os.path.abspath(args.resume))
        given, resume = given_flags(parser, argv), args.resume
        args = resume_args(parser, argv, saved, MAY_CHANGE)
        for dest in MAY_CHANGE:  # not given: the run's own value (its --epochs, ...)
            if dest not in given and dest in saved and dest not in ("dry_run", "overwrite"):
                setattr(args, dest, saved[dest])
        args.resume = resume
    if args.label is not None and not args.generate:
        parser.error("--label goes with --generate")
    if args.z_dim is None:
        args.z_dim = ARCH_Z_DIM[args.arch]
    if args.lr_d is None:
        args.lr_d = args.lr
    if args.eval is None:
        args.eval = not args.dry_run
    return args


# -- 2. Data ----------------------------------------------------------------------------------
def to_model_range(u8):
    """The tutorials' ToTensor() + Normalize((0.5,), (0.5,)) on a (N, 28, 28) uint8 batch."""
    return u8.unsqueeze(1).float().div_(127.5).sub_(1.0)


def read_grey(path):
    """ImageFolder's loader + Grayscale(1) + 28x28, as uint8; None for an unreadable file."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB").convert("L")
            if im.size != (IMAGE_SIZE, IMAGE_SIZE):
                im = transforms.functional.center_crop(
                    transforms.functional.resize(im, IMAGE_SIZE), IMAGE_SIZE)
            return torch.from_numpy(np.array(im, dtype=np.uint8))
    except Exception:  # truncated, corrupt or not an image at all
        return None


class Decoded(torch.utils.data.Dataset):
    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        image = read_grey(self.paths[i])
        return (torch.zeros(IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8), False) \
            if image is None else (image, True)


def load_folder(root, workers):
    """Image paths with class subfolders (ImageFolder's layout) or a flat folder (one class),
    decoded once: (paths, uint8 images, labels, classes); unreadable files are skipped."""
    if not os.path.isdir(root):
        fail(f"--dataroot {root} does not exist; pass a folder of images, e.g. "
             f"data/mnist_png/training with one subfolder per class")
    is_image = lambda name: name.lower().endswith(torchvision.datasets.folder.IMG_EXTENSIONS)
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and e.name[0] != ".")
    samples = []
    for c, name in enumerate(classes):
        for folder, _, files in sorted(os.walk(os.path.join(root, name))):
            samples += [(os.path.join(folder, f), c) for f in sorted(files) if is_image(f)]
    if not samples:  # no class subfolders with images: a flat folder is one class
        classes = [os.path.basename(os.path.normpath(root))]
        samples = [(e.path, 0) for e in sorted(os.scandir(root), key=lambda e: e.name)
                   if e.is_file() and is_image(e.name)]
    if not samples:
        fail(f"no images (.png, .jpg, ...) in --dataroot {root}; put them in class subfolders "
             f"({root}/0/*.png, ...) or directly in {root}")
    print(f"decoding {len(samples)} images in {root} ...", flush=True)
    loader = DataLoader(Decoded([s for s, _ in samples]), batch_size=500, num_workers=workers,
                        worker_init_fn=ignore_signals)
    images, ok = map(torch.cat, zip(*loader))
    if not ok.all():
        bad = [s for (s, _), good in zip(samples, ok) if not good]
        print(f"warning: skipped {len(bad)} unreadable image file(s), e.g. {bad[0]}",
              file=sys.stderr)
    if not ok.any():
        fail(f"none of the {len(samples)} image files in {root} could be read")
    samples = [s for s, good in zip(samples, ok) if good]
    return samples, images[ok], torch.tensor([c for _, c in samples]), classes


def load_torchvision(args):
    """MNIST / FashionMNIST under --dataroot: (train, test) datasets; .gz files are unpacked
    here (torchvision only accepts its own copies of them)."""
    cls = {"mnist": torchvision.datasets.MNIST,
           "fashion-mnist": torchvision.datasets.FashionMNIST}[args.dataset]
    raw = os.path.join(args.dataroot, cls.__name__, "raw")
    files = [f"{s}-{k}-idx{d}-ubyte" for s in ("train", "t10k") for k, d in
             (("images", 3), ("labels", 1))]
    try:
        for name in files:
            if not os.path.isfile(os.path.join(raw, name)) and \
                    os.path.isfile(os.path.join(raw, name + ".gz")):
                with gzip.open(os.path.join(raw, name + ".gz")) as src, \
                        open(os.path.join(raw, name), "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except OSError as e:
        fail(f"cannot unpack the .gz files in {raw} ({e}); gunzip them there yourself")
    missing = [f for f in files if not os.path.isfile(os.path.join(raw, f))]
    if missing and not args.download:
        fail(f"{cls.__name__} is not in {raw} (--no-download); put {', '.join(files)} "
             f"(or their .gz files) there")
    try:
        with contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            train = cls(args.dataroot, train=True, download=args.download)
            test = cls(args.dataroot, train=False, download=args.download)
    except Exception as e:
        why = "could not be downloaded (offline?)" if missing else f"cannot be read ({e})"
        fail(f"{cls.__name__} {why}; put {', '.join(files)} (or their .gz files) in {raw}/")
    return train, test


def load_data(args):
    """Training data (uint8 (N, 28, 28), labels, classes), the real images the quality
    figures compare with, and the tutorials' dataset object (files decoded every epoch)."""
    if args.dataset == "folder":
        samples, images, labels, classes = load_folder(args.dataroot, args.workers)
        half = len(images) // 2  # no test split: the quality reference is the other half
        test_images, test_labels = images[half:], labels[half:]
        dataset = samples
    else:
        dataset, test = load_torchvision(args)
        images, labels, classes = dataset.data, dataset.targets, list(dataset.classes)
        test_images, test_labels = test.data, test.targets
    if len(classes) < 2:
        labels = test_labels = None  # one class: nothing to condition on or count
    return dataset, images, labels, classes, test_images, test_labels


class TensorBatches:
    """Addition (--decode-once): the DataLoader's (images, labels) batches, shuffled with the
    same generator, cut from one uint8 tensor on the device instead of decoded every epoch."""

    def __init__(self, images, labels, batch_size, generator, drop_last, device):
        self.images, self.labels = images.to(device), labels
        self.labels = None if labels is None else labels.to(device)
        self.batch_size, self.generator, self.device = batch_size, generator, device
        self.n = len(images) // batch_size if drop_last else math.ceil(len(images) / batch_size)

    def __len__(self):
        return self.n

    def __iter__(self):
        perm = torch.randperm(len(self.images), generator=self.generator).to(self.device)
        for i in range(self.n):
            idx = perm[i * self.batch_size:(i + 1) * self.batch_size]
            yield to_model_range(self.images[idx]), \
                None if self.labels is None else self.labels[idx]


# -- 3. Networks: the tutorials' classes, names and shapes ------------------------------------
# Both discriminators return logits (the tutorials: a sigmoid, then BCELoss).
class Generator_model(nn.Module):  # the cookbook, "Creating a DCGAN generator"
    def __init__(self, z_dim, n_classes=0):
        super().__init__()
        self.n_classes = n_classes
        if n_classes:  # Addition (--conditional): a learned label vector joins the noise
            self.label_emb = nn.Embedding(n_classes, n_classes)
        self.fc = nn.Linear(z_dim + n_classes, 256 * 7 * 7)
        self.gen = nn.Sequential(
            nn.ConvTranspose2d(256, 128, 4, 2, 1),  # 128 x 14 x 14
            nn.BatchNorm2d(128),
            nn.LeakyReLU(0.01),
            nn.ConvTranspose2d(128, 64, 3, 1, 1),  # 64 x 14 x 14
            nn.BatchNorm2d(64),
            nn.LeakyReLU(0.01),
            nn.ConvTranspose2d(64, 1, 4, 2, 1),  # 1 x 28 x 28
            nn.Tanh()
        )

    def forward(self, input, labels=None):
        if self.n_classes:
            input = torch.cat([input, self.label_emb(labels)], 1)
        x = self.fc(input)
        x = x.view(-1, 256, 7, 7)
        return self.gen(x)


class Discriminator_model(nn.Module):  # the cookbook, "Creating a DCGAN discriminator"
    def __init__(self, n_classes=0):
        super().__init__()
        self.n_classes = n_classes
        if n_classes:  # Addition (--conditional): the label as an extra learned input channel
            self.label_emb = nn.Embedding(n_classes, IMAGE_SIZE * IMAGE_SIZE)
        self.disc = nn.Sequential(
            nn.Conv2d(1 + bool(n_classes), 32, 3, 2, 1),  # 32 x 14 x 14
            nn.LeakyReLU(0.01),
            nn.Conv2d(32, 64, 3, 2, 1),  # 64 x 7 x 7
            nn.BatchNorm2d(64),
            nn.LeakyReLU(0.01),
            nn.Conv2d(64, 128, 3, 2, 1),  # 128 x 4 x 4
            nn.BatchNorm2d(128),
            nn.LeakyReLU(0.01)
        )
        self.fc = nn.Linear(2048, 1)

    def forward(self, input, labels=None):
        if self.n_classes:
            input = torch.cat([input, self.label_emb(labels).view(-1, 1, 28, 28)], 1)
        x = self.disc(input)
        return self.fc(x.view(-1, 2048))  # the cookbook: F.sigmoid(self.fc(...))


def weights_init(m):  # the cookbook, "Training the DCGAN model"
    classname = m.__class__.__name__
    if classname.find('Conv') != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find('BatchNorm') != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


class Generator(nn.Module):  # "How to build a DCGAN with PyTorch"
    def __init__(self, latent_dim=16, batchnorm=True, n_classes=0):
        super().__init__()
        self.latent_dim = latent_dim
        self.batchnorm = batchnorm
        self.n_classes = n_classes
        self._init_modules()

    def _init_modules(self):
        if self.n_classes:  # Addition (--conditional)
            self.label_emb = nn.Embedding(self.n_classes, self.n_classes)
        self.linear1 = nn.Linear(self.latent_dim + self.n_classes, 256 * 7 * 7, bias=False)
        self.bn1d1 = nn.BatchNorm1d(256 * 7 * 7) if self.batchnorm else None
        self.leaky_relu = nn.LeakyReLU()
        self.conv1 = nn.Conv2d(256, 128, 5, 1, 2, bias=False)  # 128 x 7 x 7
        self.bn2d1 = nn.BatchNorm2d(128) if self.batchnorm else None
        self.conv2 = nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False)  # 64 x 14 x 14
        self.bn2d2 = nn.BatchNorm2d(64) if self.batchnorm else None
        self.conv3 = nn.ConvTranspose2d(64, 1, 4, 2, 1, bias=False)  # 1 x 28 x 28
        self.tanh = nn.Tanh()

    def forward(self, input_tensor, labels=None):
        if self.n_classes:
            input_tensor = torch.cat([input_tensor, self.label_emb(labels)], 1)
        intermediate = self.linear1(input_tensor)
        if self.batchnorm:
            intermediate = self.bn1d1(intermediate)
        intermediate = self.leaky_relu(intermediate)
        intermediate = intermediate.view((-1, 256, 7, 7))
        intermediate = self.conv1(intermediate)
        if self.batchnorm:
            intermediate = self.bn2d1(intermediate)
        intermediate = self.leaky_relu(intermediate)
        intermediate = self.conv2(intermediate)
        if self.batchnorm:
            intermediate = self.bn2d2(intermediate)
        intermediate = self.leaky_relu(intermediate)
        intermediate = self.conv3(intermediate)
        return self.tanh(intermediate)


class Discriminator(nn.Module):  # "How to build a DCGAN with PyTorch"
    def __init__(self, n_classes=0):
        super().__init__()
        self.n_classes = n_classes
        self._init_modules()

    def _init_modules(self):
        if self.n_classes:  # Addition (--conditional)
            self.label_emb = nn.Embedding(self.n_classes, IMAGE_SIZE * IMAGE_SIZE)
        self.conv1 = nn.Conv2d(1 + bool(self.n_classes), 64, 5, 2, 2)  # 64 x 14 x 14
        self.leaky_relu = nn.LeakyReLU()
        self.dropout_2d = nn.Dropout2d(0.3)
        self.conv2 = nn.Conv2d(64, 128, 5, 2, 2)  # 128 x 7 x 7
        self.linear1 = nn.Linear(128 * 7 * 7, 1)

    def forward(self, input_tensor, labels=None):
        if self.n_classes:
            input_tensor = torch.cat(
                [input_tensor, self.label_emb(labels).view(-1, 1, 28, 28)], 1)
        intermediate = self.dropout_2d(self.leaky_relu(self.conv1(input_tensor)))
        intermediate = self.dropout_2d(self.leaky_relu(self.conv2(intermediate)))
        return self.linear1(intermediate.view((-1, 128 * 7 * 7)))  # (then nn.Sigmoid())


def build_generator(settings):
    """The generator a generator.pt2's settings describe."""
    if settings["arch"] == "cookbook":
        return Generator_model(settings["z_dim"], settings["n_classes"])
    return Generator(settings["z_dim"], settings["batchnorm"], settings["n_classes"])


# -- 4. Training helpers: set up once before the loop, about one line each in it --------------
def bf16_forward(model, enabled):
    """Addition (--amp): the model's forward runs under bf16 autocast and returns float32."""
    if enabled:
        forward = model.forward
        model.forward = lambda *a: forward(*a).float()
        model.forward = torch.autocast(model_device(model).type, torch.bfloat16)(model.forward)
    return model


def model_device(model):
    return next(model.parameters()).device


def ema_of(generator, decay):
    """Addition (--ema): torch's AveragedModel of G with a bias-corrected exponential average:
    after t updates the past weights count ema^age, renormalised as Adam's moments are, so a
    short run is not pulled toward the random initial weights (a plain 0.995 average still holds
    45% of them after 160 steps). Batch-norm buffers follow G (use_buffers=False)."""
    def multi_avg_fn(averaged, current, num_averaged):
        weight = (1 - decay) / (1 - decay ** (num_averaged + 1).double())
        torch._foreach_lerp_(averaged, current, weight.float())
    return AveragedModel(generator, multi_avg_fn=multi_avg_fn, use_buffers=False) if decay \
        else None


def sampling_copy(model, args, n_cond, device, batches=4, size=256):
    """Addition: an eval-mode float32 copy of G (or of its average, --ema) whose batch-norm
    statistics are recomputed for its own weights: the cumulative average of a few train-mode
    passes on fresh noise (swa_utils.update_bn's idea). The running statistics training leaves
    were gathered with older weights, and an average of G never had its own. G is untouched."""
    with torch.random.fork_rng(devices=[]):  # building it must not move training's stream
        g = build_generator({"arch": args.arch, "z_dim": args.z_dim,
                             "batchnorm": args.batchnorm, "n_classes": n_cond}).to(device)
    g.load_state_dict(model.state_dict())
    norms = [m for m in g.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(batches if norms else 0):
            z = torch.randn(size, args.z_dim, generator=gen).to(device)
            g(z, torch.randint(n_cond, (size,), generator=gen).to(device) if n_cond else None)
    for m in norms:
        m.momentum = 0.1
    return g.eval()


@torch.no_grad()
def draw(model, noise, labels=None):
    """Samples on the CPU in eval mode (batch-norm running statistics, as the export)."""
    model.eval()
    samples = torch.cat([model(z, None if labels is None else labels[j:j + len(z)]).float()
                         for j, z in zip(range(0, len(noise), 1000), noise.split(1000))])
    model.train()
    return samples.cpu()


def stats_line(t0, seen, done, total, batch_size):
    """Throughput and ETA for the progress lines."""
    rate = seen / max(time.perf_counter() - t0, 1e-9)
    return rate, f" {rate:.0f} img/s | ETA {format_eta((total - done) * batch_size / rate)} |"


# -- 5. Quality: a small classifier's view of the samples (--eval) ----------------------------
class Classifier(nn.Module):
    """A small CNN whose 128-d features stand in for FID's Inception features. After its one
    pass (below) it gets 86% of Fashion-MNIST's test images right, 96% of MNIST digits'."""

    def __init__(self, n_classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),  # 32 x 14 x 14
            nn.Conv2d(32, 64, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),  # 64 x 7 x 7
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU())
        self.head = nn.Linear(128, n_classes)

    def forward(self, x):
        return self.head(self.features(x))


@torch.no_grad()
def classify(clf, images, device):
    """Features (N, 128) and class probabilities (N, K) of images in [-1, 1]."""
    feats = torch.cat([clf.features(x.to(device).float()).cpu() for x in images.split(1000)])
    return feats.double(), torch.softmax(clf.head(feats.float().to(device)), 1).cpu()


def class_figures(probs, n_classes):
    """Classes drawn, most/least frequent ratio (blank when a class is never drawn) and mean
    confidence."""
    counts = torch.bincount(probs.argmax(1), minlength=n_classes)
    covered = int((counts > 0).sum())
    ratio = round(counts.max().item() / counts.min().item(), 3) if covered == n_classes else ""
    return {"classes_covered": covered, "class_ratio": ratio,
            "confidence": round(probs.max(1).values.mean().item(), 4)}


def get_classifier(args, images, labels, test_images, test_labels, n_classes, device,
                   steps=300):
    """Train the classifier (300 steps of 64: one pass over 19,200 real images, or over a
    smaller set), once: cached in --dataroot. Its own random stream: training's (and so
    --resume) is untouched."""
    sub = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}.get(args.dataset, "")
    path = os.path.join(args.dataroot, sub, ".dcgan_mnist_classifier.pt")
    key = [2, len(images), n_classes, int(images[::97].sum()), int(labels.sum()),
           len(test_images), args.eval_samples]
    with contextlib.suppress(Exception):  # unreadable or from another version: train again
        cached = torch.load(path, map_location="cpu", weights_only=True)
        if cached["key"] == key:
            with torch.random.fork_rng(devices=[]):  # training's random stream is untouched
                clf = Classifier(n_classes)
            clf.load_state_dict(cached["state_dict"])
            return clf.to(device).eval(), cached
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        clf = Classifier(n_classes).to(device)
        opt = optim.Adam(clf.parameters(), lr=2e-3)
        order = torch.randperm(len(images))
        steps = min(steps, max(50, len(images) // 64))
        for step in range(steps):
            idx = order[(step * 64) % len(images):][:64]
            loss = nn.functional.cross_entropy(clf(to_model_range(images[idx]).to(device)),
                                               labels[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % 50 == 0 or step == steps - 1:
                print(f"training the quality classifier (cached in {path}): step "
                      f"{step + 1}/{steps}, loss {loss.item():.3f}", flush=True)
        clf.eval()
        g = torch.Generator().manual_seed(0)
        n = min(args.eval_samples, len(test_images))
        pick = torch.randperm(len(test_images), generator=g)[:n]
        test_x = to_model_range(test_images[pick])
        train_x = to_model_range(images[torch.randperm(len(images), generator=g)[:n]])
        test_f, test_p = classify(clf, test_x, device)
        train_f, _ = classify(clf, train_x, device)
    mu, sigma = gaussian_stats(test_f)
    accuracy = (test_p.argmax(1) == test_labels[pick]).float().mean().item()
    cached = {"key": key, "accuracy": accuracy,
              "state_dict": {k: v.cpu() for k, v in clf.state_dict().items()},
              "mu": torch.from_numpy(mu), "sigma": torch.from_numpy(sigma), "real": {
                  **class_figures(test_p, n_classes),
                  "frechet": round(max(0.0, frechet_distance(*gaussian_stats(train_f), mu,
                                                             sigma)), 3)}}
    try:
        atomic_save(cached, path)
    except Exception:  # a read-only --dataroot: trained again next time
        print(f"warning: cannot cache the classifier in {path}", file=sys.stderr)
    print(f"classifier trained in {time.perf_counter() - t0:.0f}s: {accuracy:.1%} of {n} "
          f"real test images right", flush=True)
    return clf, cached


def evaluate(model, clf, cached, args, n_classes, device):
    """Quality of --eval-samples images from a fixed noise set (its own generator)."""
    g = torch.Generator().manual_seed(12345)
    z = torch.randn(args.eval_samples, args.z_dim, generator=g).to(device)
    want = torch.arange(args.eval_samples) % n_classes if args.conditional else None
    feats, probs = classify(clf, draw(model, z, None if want is None else want.to(device)),
                            device)
    figures = class_figures(probs, n_classes)
    figures["frechet"] = round(max(0.0, frechet_distance(
        *gaussian_stats(feats), cached["mu"].numpy(), cached["sigma"].numpy())), 3)
    if want is not None:  # conditional: does the classifier see the class that was asked for?
        figures["label_accuracy"] = round((probs.argmax(1) == want).float().mean().item(), 4)
    return figures


def quality_text(q, n_classes):
    ratio = f"ratio {q['class_ratio']:.2f}" if q["class_ratio"] != "" else \
        f"ratio undefined ({n_classes - q['classes_covered']} class(es) never drawn)"
    extra = f", label accuracy {q['label_accuracy']:.3f}" if "label_accuracy" in q else ""
    return (f"classes {q['classes_covered']}/{n_classes}, {ratio}, confidence "
            f"{q['confidence']:.3f}, Frechet {q['frechet']:.2f}{extra}")


def write_extras(plt, out, image_list, images, labels, n_cond, nrow, sampler, args):
    """Additions after the cookbook's figures: the progress animation and real vs fake (as the
    PyTorch DCGAN Tutorial shows them), and generator.pt2 (the sampler's weights)."""
    frames = [Image.fromarray((np.transpose(g.numpy(), (1, 2, 0)) * 255).astype(np.uint8))
              for g in image_list]
    frames[0].save(os.path.join(out, "progress.gif"), save_all=True,
                   append_images=frames[1:], duration=500, loop=0)
    first = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:64]
    real_idx = torch.cat([(labels == c).nonzero().view(-1)[:10] for c in range(n_cond)]) \
        if n_cond else first
    plt.figure(figsize=(15, 7.5))
    for k, (title, grid) in enumerate((("Real Images", vutils.make_grid(
            to_model_range(images[real_idx]), padding=2, normalize=True, nrow=nrow)),
            ("Fake Images", image_list[-1]))):
        plt.subplot(1, 2, k + 1)
        plt.axis("off")
        plt.title(title)
        plt.imshow(np.transpose(grid, (1, 2, 0)))
    plt.savefig(os.path.join(out, "real_vs_fake.png"), bbox_inches="tight")
    settings = {"arch": args.arch, "z_dim": args.z_dim, "batchnorm": args.batchnorm,
                "n_classes": n_cond}
    export = build_generator(settings)
    export.load_state_dict(sampler.state_dict())
    example = (torch.randn(2, args.z_dim),) + ((torch.tensor([0, 1]),) if n_cond else ())
    export_generator(export, example, os.path.join(out, "generator.pt2"), SCRIPT, settings)


# -- 6. Generate: sample from a saved generator without training ------------------------------
def generate(args):
    state, settings = load_generator(args.generate, SCRIPT)
    try:
        assert settings["arch"] in ARCH_Z_DIM and 1 <= int(settings["z_dim"]) <= 1024
        assert 0 <= int(settings["n_classes"]) <= 10000
        netG = build_generator(settings)
        netG.load_state_dict(state, strict=False)
        missing = [k for k in netG.state_dict() if k not in state]
        assert all(k.endswith("num_batches_tracked") for k in missing)
    except Exception:
        fail(f"{args.generate} does not hold a generator this script can rebuild; pass a "
             f"generator.pt2 that dcgan_mnist.py wrote")
    n_classes = settings["n_classes"]
    if args.label is not None and not 0 <= args.label < max(n_classes, 1):
        fail(f"--label needs a conditional generator with that class; {args.generate} has "
             f"{n_classes or 'no'} classes")
    out = prepare_out(args.out, new_run=False)
    set_seed(args.seed)
    noise = torch.randn(args.num_samples, settings["z_dim"])
    labels = None
    if n_classes:  # without --label: every class in turn, one row per class
        labels = torch.full((args.num_samples,), args.label) if args.label is not None \
            else torch.arange(args.num_samples) % n_classes
    images = draw(netG, noise, labels).clamp(-1, 1)
    nrow = n_classes if n_classes and args.label is None else 8
    path = os.path.join(out, "generated.png")
    vutils.save_image(images, path, nrow=nrow, normalize=True, value_range=(-1, 1))
    print(f"wrote {args.num_samples} samples to {path}")
    return 0


# -- main: the cookbook's recipe, in order -----------------------------------------------------
def main(argv=None):
    parser = build_parser()
    args = parse_args(parser, argv)
    plt = use_agg_unless(args.show)
    if args.generate:
        return generate(args)
    out = prepare_out(args.out, new_run=not args.resume, overwrite=args.overwrite)
    print("arguments: " + command_line(parser, args), flush=True)
    device = pick_device(args.device)
    print(f"seed: {args.seed}\ndevice: {device}")
    set_seed(args.seed)

    # Data: the cookbook's transform; the PNG-folder tutorial's ImageFolder and DataLoader.
    transform = transforms.Compose([
        transforms.ToTensor(),
        transforms.Normalize((0.5, ), (0.5, )),
    ])
    dataset, images, labels, classes, test_images, test_labels = load_data(args)
    n_classes, all_images, all_labels = len(classes), images, labels
    if args.conditional and labels is None:
        fail(f"--conditional needs labelled data (class subfolders); {args.dataroot} has one")
    keep = torch.arange(len(images))
    if args.subset and args.subset < len(images):  # a fixed subset, the same for every --seed
        keep = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
        keep = keep[:args.subset].sort().values
    images, labels = images[keep], None if labels is None else labels[keep]
    if len(images) < 2:
        fail("need at least 2 training images (batch norm)")
    print(f"data: {len(images)} images of {n_classes} class(es) from {args.dataset} "
          f"({args.dataroot})")
    loader_gen = torch.Generator().manual_seed(args.seed)  # shuffles; saved for --resume
    drop_last = len(images) % args.batch_size == 1  # batch norm needs 2 images in a batch
    if args.decode_once:  # Addition: decoded once, batches cut on the device (fast)
        train_loader = TensorBatches(images, labels, args.batch_size, loader_gen, drop_last,
                                     device)
    else:  # the tutorials: files decoded by DataLoader workers every epoch
        if args.dataset == "folder":
            transform = transforms.Compose([
                transforms.Grayscale(num_output_channels=1),
                transforms.ToTensor(),
                transforms.Normalize((0.5,), (0.5,))
            ])
            transform.transforms += [transforms.Resize(IMAGE_SIZE, antialias=True),
                                     transforms.CenterCrop(IMAGE_SIZE)]  # Addition: any size
            samples = dataset
            if len(classes) < 2:
                fail("the tutorial's ImageFolder needs class subfolders; drop --no-decode-once")
            dataset = ImageFolder(root=args.dataroot, transform=transform)
            dataset.samples = samples  # Addition: only the files that could be read
        else:
            dataset.transform = transform
        dataset = torch.utils.data.Subset(dataset, keep.tolist())
        train_loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True,
                                  num_workers=args.workers, generator=loader_gen,
                                  drop_last=drop_last, worker_init_fn=ignore_signals)

    # Networks: the cookbook's objects (or the PNG-folder tutorial's with --arch dropout)
    z_dim = args.z_dim
    n_cond = n_classes if args.conditional else 0
    if args.arch == "cookbook":
        generator = Generator_model(z_dim, n_cond).to(device)
        discriminator = Discriminator_model(n_cond).to(device)
        generator.apply(weights_init)
        discriminator.apply(weights_init)
    else:  # the PNG-folder tutorial keeps PyTorch's initialisation
        generator = Generator(z_dim, args.batchnorm, n_cond).to(device)
        discriminator = Discriminator(n_cond).to(device)
    from torchsummary import summary
    if not n_cond:  # torchsummary feeds float inputs only (no labels); on copies
        summary(copy.deepcopy(generator).cpu(), (z_dim, ), device="cpu")
        summary(copy.deepcopy(discriminator).cpu(), (1, 28, 28), device="cpu")
    criterion = nn.BCEWithLogitsLoss()  # the cookbook: nn.BCELoss() on D's sigmoid
    fixed_noise = torch.randn(64 if not n_cond else 10 * n_cond, z_dim, device=device)
    doptimizer = optim.Adam(discriminator.parameters(), lr=args.lr_d, betas=(args.beta1, 0.999))
    goptimizer = optim.Adam(generator.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    real_label, fake_label = args.real_label, 0
    image_list = []
    g_losses = []
    d_losses = []
    iterations = 0
    num_epochs = args.epochs

    # Additions, set up once: EMA, bf16, conditional labels, checkpoints, metrics, quality.
    if args.channels_last:  # --channels-last: G's transposed convolutions ~15% faster on a CPU
        generator.to(memory_format=torch.channels_last)
    ema = ema_of(generator, args.ema)  # --ema: the samples come from ema.module
    averaged = ema.module if ema else generator
    sampler = functools.partial(sampling_copy, averaged, args, n_cond, device)  # see its doc
    amp = args.amp and (device.type == "cuda" or (
        device.type == "cpu" and torch.cpu._is_avx512_bf16_supported()))
    bf16_forward(generator, amp), bf16_forward(discriminator, amp)
    print(f"autocast: {'bf16' if amp else 'off (float32)'}")
    fixed_labels = torch.arange(n_cond).repeat_interleave(10).to(device) if n_cond else None
    nrow = 10 if n_cond else 8
    loss_iterations = []  # the iteration of each g_losses/d_losses entry (the plot's x-axis)
    start_epoch, start_batch, ckpt_path = 0, 0, os.path.join(out, "checkpoint.pt")

    def save_checkpoint(epoch, batch, epoch_rng):
        if batch >= len(train_loader):  # a finished epoch: the next one starts afresh
            epoch, batch, epoch_rng = epoch + 1, 0, loader_gen.get_state()
        atomic_save({
            "script": SCRIPT, "args": vars(args), "epoch": epoch, "batch": batch,
            "iterations": iterations, "generator": generator.state_dict(),
            "discriminator": discriminator.state_dict(), "ema": ema and ema.state_dict(),
            "goptimizer": goptimizer.state_dict(), "doptimizer": doptimizer.state_dict(),
            "fixed_noise": fixed_noise.cpu(), "loader_rng": epoch_rng, "rng": rng_state(),
            "g_losses": g_losses, "d_losses": d_losses, "loss_iterations": loss_iterations,
            "image_list": [(g * 255).round().byte() for g in image_list]}, ckpt_path)

    if args.resume:
        ckpt = load_checkpoint(args.resume, SCRIPT)
        try:
            generator.load_state_dict(ckpt["generator"])
            discriminator.load_state_dict(ckpt["discriminator"])
            if ema:
                ema.load_state_dict(ckpt["ema"])
            goptimizer.load_state_dict(ckpt["goptimizer"])
            doptimizer.load_state_dict(ckpt["doptimizer"])
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            fail(f"{args.resume} does not fit this model ({type(e).__name__}); start a new run")
        start_epoch, start_batch, iterations = ckpt["epoch"], ckpt["batch"], ckpt["iterations"]
        g_losses, d_losses = ckpt["g_losses"], ckpt["d_losses"]
        loss_iterations, fixed_noise = ckpt["loss_iterations"], ckpt["fixed_noise"].to(device)
        image_list = [g.float() / 255 for g in ckpt["image_list"]]
        loader_gen.set_state(ckpt["loader_rng"])
        set_rng_state(ckpt["rng"])
        print(f"resumed {args.resume}: epoch {start_epoch + 1}, batch {start_batch}, "
              f"iteration {iterations}")
    fields = ["epoch", "iteration", "g_loss", "d_loss", "d_x", "d_g_z", "images_per_sec",
              "classes_covered", "class_ratio", "confidence", "frechet", "label_accuracy"]
    metrics = MetricsCSV(os.path.join(out, "metrics.csv"), fields, append=bool(args.resume))
    clf = quality = None
    if args.eval and labels is not None:
        clf, cached = get_classifier(args, all_images, all_labels, test_images, test_labels,
                                     n_classes, device)
        print("quality reference, real vs real: " + quality_text(cached["real"], n_classes))
    elif args.eval:
        print("note: no quality figures: they need labelled data (class subfolders)")
    total = num_epochs * len(train_loader)

    # The training loop ("Training the DCGAN model", steps 10-29)
    start = time.time()
    with StopOnCtrlC() as ctrl_c:
        for epoch in range(start_epoch, num_epochs):
            print(f"Epoch {epoch+1}; Elapsed time = {int(time.time() - start)}s")
            print(f'Epoch : | {epoch+1:03} / {num_epochs:03} |')
            epoch_rng = loader_gen.get_state()  # Addition: where --resume restarts this epoch
            t0, seen, i = time.perf_counter(), 0, start_batch - 1
            batches = itertools.islice(enumerate(train_loader), start_batch, None)
            for i, data in batches:
                discriminator.zero_grad()
                real_images = data[0].to(device)
                size = real_images.size(0)
                cond = data[1].to(device) if n_cond else None  # Addition: --conditional
                label = torch.full((size,), real_label, device=device, dtype=torch.float)
                d_output = discriminator(real_images, cond).view(-1)
                derror_real = criterion(d_output, label)
                derror_real.backward()
                d_x = d_output.detach()  # Addition: D(x) for the stats line
                noise = torch.randn(size, z_dim, device=device)
                fake_images = generator(noise, cond)
                label.fill_(fake_label)
                d_output = discriminator(fake_images.detach(), cond).view(-1)
                derror_fake = criterion(d_output, label)
                derror_fake.backward()
                derror_total = derror_real + derror_fake
                doptimizer.step()
                for g_step in range(args.g_updates):  # Addition: --g-updates (There's more)
                    if g_step:  # a second or third G step draws fresh fakes
                        fake_images = generator(torch.randn(size, z_dim, device=device), cond)
                    generator.zero_grad()
                    label.fill_(1)
                    d_output = discriminator(fake_images, cond).view(-1)
                    gerror = criterion(d_output, label)
                    gerror.backward()
                    goptimizer.step()
                if ema:  # Addition: --ema
                    ema.update_parameters(generator)
                seen += size
                last = (epoch == num_epochs-1) and (i == len(train_loader)-1)
                if i % args.log_every == 0 or last or args.dry_run:
                    rate, speed = stats_line(t0, seen, iterations + 1, total, size)
                    print(f'| {i:03} / {len(train_loader):03} | G Loss: {gerror.item():.3f} '
                          f'| D Loss: {derror_total.item():.3f} |' + speed, flush=True)
                    g_losses.append(gerror.item())
                    d_losses.append(derror_total.item())
                    loss_iterations.append(iterations)  # Addition: the plot's x-axis
                    metrics.write(  # Addition: metrics.csv
                        epoch=epoch + 1, iteration=iterations, g_loss=round(g_losses[-1], 5),
                        d_loss=round(d_losses[-1], 5), images_per_sec=round(rate, 1),
                        d_x=round(torch.sigmoid(d_x).mean().item(), 4),
                        d_g_z=round(torch.sigmoid(d_output.detach()).mean().item(), 4))
                if (iterations % args.sample_every == 0) or last or args.dry_run:
                    with torch.no_grad():  # from the average of G, in eval mode
                        fake_images = draw(sampler(), fixed_noise, fixed_labels)
                        image_list.append(vutils.make_grid(fake_images, padding=2,
                                                           normalize=True, nrow=nrow))
                    vutils.save_image(image_list[-1], f"{out}/fake_iter_{iterations:06d}.png")
                iterations += 1
                if ctrl_c.requested or args.dry_run:  # Addition: Ctrl-C saves, then exits
                    break
            start_batch = 0
            if clf and i + 1 == len(train_loader):  # Addition: quality of a finished epoch
                quality = evaluate(sampler(), clf, cached, args, n_classes, device)
                print("quality: " + quality_text(quality, n_classes), flush=True)
                metrics.write(epoch=epoch + 1, iteration=iterations - 1, **quality)
            save_checkpoint(epoch, i + 1, epoch_rng)  # Addition: checkpoint.pt
            if ctrl_c.requested:
                print(f"saved {ckpt_path}; continue with --resume {ckpt_path}", file=sys.stderr)
                raise KeyboardInterrupt
            if args.dry_run:
                break

    # Results ("Visualizing DCGAN results"): the loss plot and the grids, as files
    plt.figure(figsize=(10,5))
    plt.title("Generator and Discriminator Loss During Training")
    plt.plot(loss_iterations, g_losses, label="Generator")
    plt.plot(loss_iterations, d_losses, label="Discriminator")
    plt.xlabel("iterations")
    plt.ylabel("Loss")
    plt.legend()
    plt.savefig(os.path.join(out, "losses.png"))
    if not image_list:  # e.g. --resume of a finished run: the grid of the final weights
        image_list.append(vutils.make_grid(draw(sampler(), fixed_noise, fixed_labels),
                                           padding=2, normalize=True, nrow=nrow))
    for image in image_list[-1:]:  # the cookbook shows each; the last one is the result
        plt.figure(figsize=(8, 8))
        plt.axis("off")
        plt.imshow(np.transpose(image, (1, 2, 0)))
        plt.savefig(os.path.join(out, "fake_samples.png"), bbox_inches="tight")
    write_extras(plt, out, image_list, images, labels, n_cond, nrow, sampler(), args)
    if args.show:
        plt.show()
    print(f"wrote generator.pt2, checkpoint.pt, metrics.csv, losses.png, fake_iter_*.png, "
          f"fake_samples.png, progress.gif, real_vs_fake.png to {out}")
    if quality:
        print(f"final quality: {quality_text(quality, n_classes)} (real vs real Frechet: "
              f"{cached['real']['frechet']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
