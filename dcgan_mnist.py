"""DCGAN on MNIST digits: the cookbook's DCGAN recipes and the PNG-folder DCGAN, complete.

Follows two tutorials (../shared/seeds/): seed 000, the cookbook's "create a DCGAN generator /
discriminator, train it, visualise the results" (`--arch cookbook`, the default), and seed 002,
"How to build a DCGAN with PyTorch", trained from MNIST PNG folders (`--arch dropout`: its
discriminator uses dropout instead of batch norm, its noise has 16 dimensions).

    python dcgan_mnist.py                               # MNIST, downloaded into data/
    python dcgan_mnist.py --dataset folder --dataroot data/mnist_png/training --arch dropout
    python dcgan_mnist.py --conditional                 # one row per digit in the grids
    python dcgan_mnist.py --generate outputs/dcgan_mnist/generator.pt2 --label 7

Writes to --out: generator.pt2 (torch.export; input (N, z_dim) standard normal noise [and (N,)
labels], output (N, 1, 28, 28) in [-1, 1]; by default (--ema) the average of G's weights),
checkpoint.pt (every epoch, and on Ctrl-C), metrics.csv, losses.png, fake_iter_*.png
(fixed-noise grids), fake_samples.png, progress.gif, real_vs_fake.png. With labels, --eval
measures each epoch: classes covered, most/least frequent class ratio, classifier confidence and
the Frechet distance in a small classifier's features.
"""
import argparse
import copy
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
import torchvision
import torchvision.transforms as transforms
from PIL import Image

from common import (ArgumentParser, MetricsCSV, StopOnCtrlC, adam_beta, atomic_save,
                    export_generator, fail, format_eta, format_flags, frechet_distance,
                    gaussian_stats, image_grid, load_checkpoint, load_generator, make_out_dir,
                    non_negative_int, pick_device, positive_float, positive_int, rng_state, run,
                    save_image_grid, save_images, save_loss_plot, save_progress_gif,
                    save_real_vs_fake, set_rng_state, set_seed, unit_interval, use_agg_unless)

ARCH_Z_DIM = {"cookbook": 100, "dropout": 16}  # seed 000: z_dim = 100; seed 002: latent_dim = 16
IMAGE_SIZE = 28


# -- 1. Arguments ---------------------------------------------------------------------------
def unit_float(text):
    """argparse type: a number in (0, 1]."""
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def parse_args(argv=None):
    p = ArgumentParser(description="DCGAN on MNIST / Fashion-MNIST / PNG folders "
                       "(cookbook DCGAN, seed 000; PNG-folder DCGAN, seed 002).")
    p.add_argument("--arch", choices=sorted(ARCH_Z_DIM), default="cookbook",
                   help="cookbook: Generator_model/Discriminator_model of seed 000; dropout: "
                   "seed 002's DCGAN (BatchNorm1d generator, dropout discriminator, z_dim 16)")
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist", "folder"], default="mnist",
                   help="torchvision MNIST / FashionMNIST in --dataroot, or an image folder "
                   "(class subfolders as in mnist_png/training, or a flat folder = one class)")
    p.add_argument("--dataroot", default="data", help="where the dataset is (or is downloaded to)")
    p.add_argument("--download", action=argparse.BooleanOptionalAction, default=True,
                   help="download MNIST/Fashion-MNIST into --dataroot when missing")
    p.add_argument("--subset", type=positive_int, default=None,
                   help="train on a fixed random subset of this many images (None: all)")
    p.add_argument("--workers", type=non_negative_int, default=2,
                   help="processes decoding an image folder (once, before training)")
    p.add_argument("--z-dim", type=positive_int, default=None,
                   help="noise size (None: 100 for cookbook, 16 for dropout)")
    p.add_argument("--conditional", action="store_true",
                   help="class-conditional GAN: label embedding into G and D (needs labels)")
    p.add_argument("--epochs", type=positive_int, default=50, help="passes over the data")
    # Better than the cookbook: its lr, but beta1 0.5 (DCGAN paper), one-sided label smoothing,
    # batch 64 (twice the updates) and samples from an average of G's weights (--ema 0.995).
    # 10 epochs on 5,000 real MNIST digits (seeds 999, 2, 3, 4): all 10 digits, most/least
    # frequent 1.9-2.6 (cookbook settings: 30-128), Frechet 17-41 (cookbook: 86-221); README.
    p.add_argument("--batch-size", type=positive_int, default=64,
                   help="images per step (cookbook: 128, seed 002: 32)")
    p.add_argument("--lr", type=positive_float, default=1e-3,
                   help="generator learning rate (cookbook: Adam's default 1e-3; seed 002: 2e-4)")
    p.add_argument("--lr-d", type=positive_float, default=None,
                   help="discriminator learning rate (None: same as --lr; seed 002: 1e-3)")
    p.add_argument("--beta1", type=adam_beta, default=0.5, help="Adam beta1 (cookbook: 0.9)")
    p.add_argument("--real-label", type=unit_float, default=0.9,
                   help="D's target for real images: < 1 is one-sided label smoothing "
                   "(both tutorials: 1.0)")
    p.add_argument("--ema", type=unit_interval, default=0.995,
                   help="the samples, grids, quality figures and generator.pt2 come from a moving "
                   "average of G's weights (each step: avg = ema * avg + (1 - ema) * G, "
                   "bias-corrected as Adam's moments); 0: G itself, as both tutorials")
    p.add_argument("--log-every", type=positive_int, default=50,
                   help="progress line and loss record every N iterations of an epoch")
    p.add_argument("--sample-every", type=positive_int, default=500,
                   help="fixed-noise grid every N iterations (and at the end)")
    p.add_argument("--eval", action=argparse.BooleanOptionalAction, default=None,
                   help="measure sample quality after every epoch (None: on when the data has "
                   "labels, off with --dry-run)")
    p.add_argument("--eval-samples", type=positive_int, default=5000,
                   help="generated images per quality measurement")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                   help="bf16 autocast on CUDA, and on CPUs with native bf16 (AVX512-BF16/AMX)")
    p.add_argument("--seed", type=int, default=999, help="random seed")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto",
                   help="auto picks cuda, then mps, then cpu")
    p.add_argument("--out", default="outputs/dcgan_mnist", help="folder for everything written")
    p.add_argument("--resume", metavar="PATH", help="continue from a checkpoint.pt")
    p.add_argument("--dry-run", action="store_true",
                   help="one training iteration, then write every output file")
    p.add_argument("--show", action="store_true", help="also show the figures in windows")
    p.add_argument("--generate", metavar="PATH",
                   help="no training: sample from a saved generator.pt2")
    p.add_argument("--num-samples", type=positive_int, default=64, help="images for --generate")
    p.add_argument("--label", type=int, default=None,
                   help="with --generate and a conditional generator: the class to draw")
    p.add_argument("--save-images", metavar="DIR",
                   help="with --generate: also write one PNG per sample into DIR")
    args = p.parse_args(argv)
    if args.z_dim is None:
        args.z_dim = ARCH_Z_DIM[args.arch]
    if args.lr_d is None:
        args.lr_d = args.lr
    if (args.label is not None or args.save_images) and not args.generate:
        p.error("--label and --save-images go with --generate")
    if args.eval is None:
        args.eval = not args.dry_run
    return args


# -- 2. Data: the whole training set as one uint8 tensor, indexed on the device ------------
# The tutorials' transform, Compose([ToTensor(), Normalize((0.5,), (0.5,))]), maps a byte u to
# u / 127.5 - 1; to_model_range() applies it to a whole batch on the device at once, instead of
# per image in DataLoader workers every epoch.
def to_model_range(u8):
    return u8.unsqueeze(1).float().div_(127.5).sub_(1.0)


class DecodedImages(torch.utils.data.Dataset):
    """Decodes each file once, as seed 002's ImageFolder + Grayscale(1) would, to 28x28 bytes.
    Unreadable files come back flagged instead of crashing the epoch."""

    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        try:
            with Image.open(self.paths[i]) as im:
                im = im.convert("RGB").convert("L")  # ImageFolder's loader, then Grayscale(1)
                resized = im.size != (IMAGE_SIZE, IMAGE_SIZE)
                if resized:
                    im = transforms.functional.center_crop(
                        transforms.functional.resize(im, IMAGE_SIZE), IMAGE_SIZE)
                return torch.from_numpy(np.array(im, dtype=np.uint8)), 1, int(resized)
        except Exception:  # truncated, corrupt or not an image at all
            return torch.zeros(IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8), 0, 0


def load_folder(root, workers):
    """Seed 002's ImageFolder(root) (class subfolders), or a flat folder of images as one class."""
    if not os.path.isdir(root):
        fail(f"--dataroot {root} does not exist; pass a folder of images, e.g. "
             f"data/mnist_png/training with one subfolder per class")
    is_image = lambda name: name.lower().endswith(torchvision.datasets.folder.IMG_EXTENSIONS)
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    samples = []
    for c, name in enumerate(classes):
        for folder, _, files in sorted(os.walk(os.path.join(root, name))):
            samples += [(os.path.join(folder, f), c) for f in sorted(files) if is_image(f)]
    if not samples:  # no class subfolders with images: a flat folder is one class
        classes = [os.path.basename(os.path.normpath(root))]
        samples = [(e.path, 0) for e in sorted(os.scandir(root), key=lambda e: e.name)
                   if e.is_file() and is_image(e.name)]
        if samples:
            print(f"note: {root} has no class subfolders; its {len(samples)} images are one class")
    if not samples:
        fail(f"no images (.png, .jpg, ...) in --dataroot {root}; put them in class subfolders "
             f"({root}/0/*.png, {root}/1/*.png, ...) or directly in {root}")
    loader = torch.utils.data.DataLoader(DecodedImages([p for p, _ in samples]), batch_size=512,
                                         num_workers=workers, generator=torch.Generator())
    images, ok, resized = map(torch.cat, zip(*loader))
    ok = ok.bool()
    if (~ok).any():
        first = samples[int((~ok).nonzero()[0])][0]
        print(f"warning: skipped {int((~ok).sum())} unreadable image file(s), e.g. {first}",
              file=sys.stderr)
    if not ok.any():
        fail(f"none of the {len(samples)} image files in {root} could be read")
    if resized[ok].any():
        print(f"note: {int(resized[ok].sum())} image(s) are not {IMAGE_SIZE}x{IMAGE_SIZE}; "
              f"resized (shorter side) and center-cropped to {IMAGE_SIZE}x{IMAGE_SIZE}")
    labels = torch.tensor([c for _, c in samples])[ok]
    return images[ok], labels, classes


def load_data(args):
    """Returns train images (N, 28, 28) uint8, labels (N,) or None, class names, and the real
    images (and labels) the quality figures compare against (the test split where there is one)."""
    if args.dataset == "folder":
        images, labels, classes = load_folder(args.dataroot, args.workers)
        test_images, test_labels = images, labels  # no test split: compare with training images
    else:
        cls = {"mnist": torchvision.datasets.MNIST, "fashion-mnist": torchvision.datasets.FashionMNIST}[args.dataset]
        raw = os.path.join(args.dataroot, cls.__name__, "raw")
        try:
            train = cls(args.dataroot, train=True, download=args.download)
            test = cls(args.dataroot, train=False, download=args.download)
        except Exception as e:
            why = f"and could not be downloaded ({type(e).__name__}: {e})" if args.download else "(--no-download)"
            fail(f"{cls.__name__} not found in {raw} {why}; put "
                 f"train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
                 f"t10k-labels-idx1-ubyte (or their .gz files) in {raw}/")
        images, labels, classes = train.data, train.targets, list(train.classes)
        test_images, test_labels = test.data, test.targets
    if len(classes) < 2:
        labels = test_labels = None  # one class: nothing to condition on or count
    return images, labels, classes, test_images, test_labels


def classifier_cache_path(args):
    if args.dataset == "folder":
        return os.path.join(args.dataroot, ".dcgan_mnist_classifier.pt")
    sub = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}[args.dataset]
    return os.path.join(args.dataroot, sub, "dcgan_mnist_classifier.pt")


# -- 3. Networks: the tutorials' classes, names and shapes ----------------------------------
# Both discriminators return logits: the tutorials end in a sigmoid and train with BCELoss;
# BCEWithLogitsLoss does both in one numerically stable op that is also safe under autocast.
class Generator_model(nn.Module):  # seed 000, "create a DCGAN generator"
    def __init__(self, z_dim, n_classes=0):
        super().__init__()
        self.n_classes = n_classes
        if n_classes:  # --conditional: a learned label vector is appended to the noise
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


class Discriminator_model(nn.Module):  # seed 000, "create a DCGAN discriminator"
    def __init__(self, n_classes=0):
        super().__init__()
        self.n_classes = n_classes
        if n_classes:  # --conditional: the label as an extra learned 28x28 input channel
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
            input = torch.cat([input, self.label_emb(labels).view(-1, 1, IMAGE_SIZE, IMAGE_SIZE)], 1)
        x = self.disc(input)
        return self.fc(x.flatten(1))  # logits (the tutorial: F.sigmoid(self.fc(x.view(-1, 2048))))


def weights_init(m):  # seed 000, "train the DCGAN model" step 2
    classname = m.__class__.__name__
    if classname.find('Conv') != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find('BatchNorm') != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


class Generator(nn.Module):  # seed 002 (its code blocks are lost; shapes from the issue)
    def __init__(self, latent_dim, n_classes=0):
        super().__init__()
        self.latent_dim = latent_dim
        self.n_classes = n_classes
        self._init_modules()

    def _init_modules(self):
        if self.n_classes:
            self.label_emb = nn.Embedding(self.n_classes, self.n_classes)
        self.linear1 = nn.Linear(self.latent_dim + self.n_classes, 256 * 7 * 7, bias=False)
        self.bn1d1 = nn.BatchNorm1d(256 * 7 * 7)
        self.leaky_relu = nn.LeakyReLU()
        self.conv1 = nn.Conv2d(256, 128, 5, 1, 2, bias=False)  # 128 x 7 x 7
        self.bn2d1 = nn.BatchNorm2d(128)
        self.conv2 = nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False)  # 64 x 14 x 14
        self.bn2d2 = nn.BatchNorm2d(64)
        self.conv3 = nn.ConvTranspose2d(64, 1, 4, 2, 1, bias=False)  # 1 x 28 x 28
        self.tanh = nn.Tanh()

    def forward(self, input_tensor, labels=None):
        if self.n_classes:
            input_tensor = torch.cat([input_tensor, self.label_emb(labels)], 1)
        intermediate = self.leaky_relu(self.bn1d1(self.linear1(input_tensor)))
        intermediate = intermediate.view((-1, 256, 7, 7))
        intermediate = self.leaky_relu(self.bn2d1(self.conv1(intermediate)))
        intermediate = self.leaky_relu(self.bn2d2(self.conv2(intermediate)))
        return self.tanh(self.conv3(intermediate))


class Discriminator(nn.Module):  # seed 002
    def __init__(self, n_classes=0):
        super().__init__()
        self.n_classes = n_classes
        self._init_modules()

    def _init_modules(self):
        if self.n_classes:
            self.label_emb = nn.Embedding(self.n_classes, IMAGE_SIZE * IMAGE_SIZE)
        self.conv1 = nn.Conv2d(1 + bool(self.n_classes), 64, 5, 2, 2)  # 64 x 14 x 14
        self.leaky_relu = nn.LeakyReLU()
        self.dropout_2d = nn.Dropout2d(0.3)
        self.conv2 = nn.Conv2d(64, 128, 5, 2, 2)  # 128 x 7 x 7
        self.linear1 = nn.Linear(128 * 7 * 7, 1)

    def forward(self, input_tensor, labels=None):
        if self.n_classes:
            input_tensor = torch.cat(
                [input_tensor, self.label_emb(labels).view(-1, 1, IMAGE_SIZE, IMAGE_SIZE)], 1)
        intermediate = self.dropout_2d(self.leaky_relu(self.conv1(input_tensor)))
        intermediate = self.dropout_2d(self.leaky_relu(self.conv2(intermediate)))
        return self.linear1(intermediate.flatten(1))  # logits (seed 002: then nn.Sigmoid())


def build_models(arch, z_dim, n_classes):
    if arch == "cookbook":
        generator, discriminator = Generator_model(z_dim, n_classes), Discriminator_model(n_classes)
        generator.apply(weights_init)
        discriminator.apply(weights_init)
    else:  # seed 002 keeps PyTorch's default initialisation
        generator, discriminator = Generator(z_dim, n_classes), Discriminator(n_classes)
    return generator, discriminator


def print_summaries(generator, discriminator, z_dim):
    """The cookbook's torchsummary tables (on CPU copies, so nothing in the models changes)."""
    if generator.n_classes:  # torchsummary feeds float inputs only: no labels
        for name, m in (("generator", generator), ("discriminator", discriminator)):
            print(f"{name}: {sum(p.numel() for p in m.parameters()):,} parameters (conditional)")
        return
    from torchsummary import summary
    with torch.random.fork_rng(devices=[]):
        summary(copy.deepcopy(generator).cpu().eval(), (z_dim,), device="cpu")
        summary(copy.deepcopy(discriminator).cpu().eval(), (1, IMAGE_SIZE, IMAGE_SIZE), device="cpu")


# -- 4. Training: seed 002's DCGAN class around the cookbook's loop -------------------------
def cpu_has_bf16():
    """True on CPUs with native bf16 (AVX512-BF16 / AMX), where bf16 autocast is about 1.7x
    faster for these models; elsewhere it would be emulated, and slower."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


class DCGAN:
    def __init__(self, generator, discriminator, noise_fn, images, labels, args, device):
        self.generator, self.discriminator = generator, discriminator
        self.noise_fn = noise_fn
        self.images, self.labels = images, labels  # the whole training set, on the device
        self.batch_size, self.device, self.args = args.batch_size, device, args
        self.criterion = nn.BCEWithLogitsLoss()
        betas = (args.beta1, 0.999)
        self.optim_d = optim.Adam(discriminator.parameters(), lr=args.lr_d, betas=betas)  # doptimizer
        self.optim_g = optim.Adam(generator.parameters(), lr=args.lr, betas=betas)  # goptimizer
        self.real_label, self.fake_label = args.real_label, 0.0
        self.amp = args.amp and (device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16()))
        # What --resume needs beyond the weights (the cookbook's image_list, g_losses, ...).
        self.epoch, self.batch, self.perm, self.iterations = 0, 0, None, 0
        self.g_losses, self.d_losses, self.image_list = [], [], []
        self.last_rate = None  # images/s of the previous epoch, for a steadier ETA
        # --ema: an average of G's recent weights draws every sample (G keeps training as is);
        # the batch-norm running statistics are copied from G.
        self.generator_ema = copy.deepcopy(generator).requires_grad_(False) if args.ema else None

    def sampler(self):
        """The network that draws samples: the weight average with --ema, else G itself."""
        return self.generator if self.generator_ema is None else self.generator_ema

    @torch.no_grad()
    def update_ema(self):
        # Bias-corrected, as Adam's moments: after t steps the average weighs G's past weights by
        # ema^age and renormalises, so the random initial weights do not linger (a plain EMA
        # with 0.995 still holds 45% of them after 160 steps: garbage samples in short runs).
        t = self.iterations + 1  # G steps so far, this one included (saved in checkpoints)
        weight = (1.0 - self.args.ema) / (1.0 - self.args.ema ** t)
        for avg, p in zip(self.generator_ema.parameters(), self.generator.parameters()):
            avg.lerp_(p, weight)
        for avg, b in zip(self.generator_ema.buffers(), self.generator.buffers()):
            avg.copy_(b)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    @torch.no_grad()
    def generate_samples(self, latent_vec, labels=None):
        """Fixed-noise samples on the CPU, with batch-norm running statistics (eval mode) as the
        exported generator uses them, so no training state is touched."""
        sampler = self.sampler()
        sampler.eval()
        samples = sampler(latent_vec, labels).float().cpu()
        sampler.train()
        return samples

    def train_step_discriminator(self, real_samples, fake_samples, labels):
        """Cookbook steps 12-23: real and fake in separate batches, both gradients, one step."""
        self.discriminator.zero_grad(set_to_none=True)
        size = real_samples.size(0)
        with self.autocast():
            d_output = self.discriminator(real_samples, labels).view(-1)
        derror_real = self.criterion(d_output.float(), torch.full((size,), self.real_label, device=self.device))
        derror_real.backward()
        with self.autocast():
            d_output_fake = self.discriminator(fake_samples.detach(), labels).view(-1)
        derror_fake = self.criterion(d_output_fake.float(), torch.full((size,), self.fake_label, device=self.device))
        derror_fake.backward()
        self.optim_d.step()
        derror_total = derror_real.detach() + derror_fake.detach()
        return derror_total, torch.sigmoid(d_output.detach()).mean(), torch.sigmoid(d_output_fake.detach()).mean()

    def train_step_generator(self, fake_samples, labels):
        """Cookbook steps 24-27: the D step's fakes, now labelled real (the generator's goal)."""
        self.generator.zero_grad(set_to_none=True)
        with self.autocast():
            d_output = self.discriminator(fake_samples, labels).view(-1)
        gerror = self.criterion(d_output.float(), torch.ones_like(d_output, dtype=torch.float))
        gerror.backward()
        self.optim_g.step()
        if self.generator_ema is not None:
            self.update_ema()
        return gerror.detach()

    def num_batches(self):
        n = len(self.images)  # the cookbook's DataLoader keeps the last, smaller batch ...
        batches = math.ceil(n / self.batch_size)
        return batches - 1 if n % self.batch_size == 1 else batches  # ... but batch norm needs 2

    def train_epoch(self, num_epochs, fixed, snapshot, log, stop):
        """One pass over the data, resuming mid-epoch when a checkpoint stopped there.
        Returns False when `stop` (Ctrl-C, --dry-run) ended it early."""
        args, epoch, num_batches = self.args, self.epoch, self.num_batches()
        if self.perm is None:  # the DataLoader's shuffle=True, as one index tensor
            self.perm = torch.randperm(len(self.images))
        perm = self.perm.to(self.device)
        print(f'Epoch : | {epoch + 1:03} / {num_epochs:03} |', flush=True)
        t0, seen = time.perf_counter(), 0
        for i in range(self.batch, num_batches):
            idx = perm[i * self.batch_size:(i + 1) * self.batch_size]
            real_images = to_model_range(self.images[idx])
            labels = self.labels[idx] if self.generator.n_classes else None
            size = real_images.size(0)
            noise = self.noise_fn(size)  # steps 18-19: a fake for every real image
            with self.autocast():
                fake_images = self.generator(noise, labels)
            derror_total, d_x, d_g_z = self.train_step_discriminator(real_images, fake_images, labels)
            gerror = self.train_step_generator(fake_images, labels)
            seen += size
            last = (epoch == num_epochs - 1 and i == num_batches - 1) or args.dry_run
            if i % args.log_every == 0 or last:  # step 28; .item() (a GPU sync) only here
                g, d = gerror.item(), derror_total.item()
                rate = seen / (time.perf_counter() - t0)
                eta_rate = self.last_rate if self.last_rate and seen < 20 * self.batch_size else rate
                left = (num_epochs - epoch) * num_batches - i - 1
                print(f'| {i:03} / {num_batches:03} | G Loss: {g:.3f} | D Loss: {d:.3f} '
                      f'| D(x): {d_x.item():.3f} | D(G(z)): {d_g_z.item():.3f} '
                      f'| {rate:.0f} img/s | ETA {format_eta(left * self.batch_size / eta_rate)} |', flush=True)
            if i % args.log_every == 0:  # the loss history, as the cookbook keeps it
                self.g_losses.append(g)
                self.d_losses.append(d)
                log(epoch=epoch + 1, iteration=self.iterations, g_loss=round(g, 5), d_loss=round(d, 5),
                    d_x=round(d_x.item(), 4), d_g_z=round(d_g_z.item(), 4), images_per_sec=round(rate, 1))
            if self.iterations % args.sample_every == 0 or last:  # step 29
                snapshot(self.generate_samples(*fixed))
            self.iterations += 1
            self.batch = i + 1
            if stop():
                return False
        self.epoch, self.batch, self.perm = epoch + 1, 0, None
        self.last_rate = seen / (time.perf_counter() - t0)
        return True

    def state_dict(self):
        return {"generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict(),
                "optim_g": self.optim_g.state_dict(), "optim_d": self.optim_d.state_dict(),
                "epoch": self.epoch, "batch": self.batch, "perm": self.perm, "iterations": self.iterations,
                "g_losses": self.g_losses, "d_losses": self.d_losses, "image_list": self.image_list,
                "generator_ema": None if self.generator_ema is None else self.generator_ema.state_dict()}

    def load_state_dict(self, ckpt):
        self.generator.load_state_dict(ckpt["generator"])
        if self.generator_ema is not None:  # a run without --ema: the average starts from G
            self.generator_ema.load_state_dict(ckpt.get("generator_ema") or ckpt["generator"])
        self.discriminator.load_state_dict(ckpt["discriminator"])
        self.optim_g.load_state_dict(ckpt["optim_g"])
        self.optim_d.load_state_dict(ckpt["optim_d"])
        for key in ("epoch", "batch", "perm", "iterations", "g_losses", "d_losses", "image_list"):
            setattr(self, key, ckpt[key])


# -- 5. Quality: a small classifier's view of the samples (--eval) --------------------------
class Classifier(nn.Module):
    """A small CNN (88% on Fashion-MNIST test images after its two epochs) whose 128-d features
    stand in for FID's Inception features: the Frechet distance between real and generated."""

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
def classify(clf, images, device, batch=1000):
    """Features (N, 128) and class probabilities (N, K) of images in [-1, 1] (N, 1, 28, 28)."""
    feats, probs = [], []
    for chunk in images.split(batch):
        f = clf.features(chunk.to(device).float())
        feats.append(f.cpu())
        probs.append(torch.softmax(clf.head(f), 1).cpu())
    return torch.cat(feats).double(), torch.cat(probs)


def class_figures(probs, n_classes):
    counts = torch.bincount(probs.argmax(1), minlength=n_classes)
    ratio = counts.max().item() / counts.min().item() if counts.min() > 0 else float("inf")
    return {"classes_covered": int((counts > 0).sum()), "class_ratio": round(ratio, 3),
            "confidence": round(probs.max(1).values.mean().item(), 4)}


def get_classifier(args, images, labels, test_images, n_classes, device):
    """Train the classifier once on the full real training set; cache it in --dataroot."""
    path = classifier_cache_path(args)
    key = [1, len(images), n_classes, int(images[::97].sum()), int(labels.sum()), len(test_images)]
    if os.path.isfile(path):
        try:
            cached = torch.load(path, map_location="cpu", weights_only=True)
            if cached["key"] == key:
                clf = Classifier(n_classes)
                clf.load_state_dict(cached["state_dict"])
                return clf.to(device).eval(), cached
        except Exception:
            pass  # unreadable or from another version: train again
    print(f"training the quality classifier on {len(images)} real images (once; cached in {path}) ...", flush=True)
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(0)  # the training run's random stream is left untouched
        clf = Classifier(n_classes).to(device)
        opt = optim.Adam(clf.parameters(), lr=1e-3)
        x_all, y_all = images.to(device), labels.to(device)
        steps = max(2 * len(images) // 128, 50)  # about two epochs; more for tiny sets
        for step in range(steps):
            idx = torch.randint(len(images), (128,), device=device)
            loss = nn.functional.cross_entropy(clf(to_model_range(x_all[idx])), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        clf.eval()
        # Reference figures, real vs real: what a perfect generator would score.
        g = torch.Generator().manual_seed(0)
        n = min(args.eval_samples, len(test_images))
        test_x = to_model_range(test_images[torch.randperm(len(test_images), generator=g)[:n]])
        train_x = to_model_range(images[torch.randperm(len(images), generator=g)[:n]])
        test_f, test_p = classify(clf, test_x, device)
        train_f, _ = classify(clf, train_x, device)
    mu, sigma = gaussian_stats(test_f)
    cached = {"key": key, "state_dict": {k: v.cpu() for k, v in clf.state_dict().items()},
              "mu": torch.from_numpy(mu), "sigma": torch.from_numpy(sigma),
              "real": {**class_figures(test_p, n_classes),
                       "frechet": round(frechet_distance(*gaussian_stats(train_f), mu, sigma), 3)}}
    try:
        atomic_save(cached, path)
    except OSError as e:
        print(f"warning: cannot cache the classifier in {path} ({e.strerror}); it is retrained next run",
              file=sys.stderr)
    print(f"classifier trained in {time.perf_counter() - t0:.0f}s", flush=True)
    return clf, cached


def evaluate(gan, clf, cached, args, n_classes):
    """Quality of --eval-samples images from a fixed noise set (its own RNG: training's random
    stream, and so --resume, is unaffected)."""
    g = torch.Generator().manual_seed(12345)
    z = torch.randn(args.eval_samples, args.z_dim, generator=g).to(gan.device)
    want = (torch.arange(args.eval_samples) % n_classes).to(gan.device) if gan.generator.n_classes else None
    fake = torch.cat([gan.generate_samples(zc, None if want is None else want[j:j + 1000])
                      for j, zc in zip(range(0, len(z), 1000), z.split(1000))])
    feats, probs = classify(clf, fake, gan.device)
    figures = class_figures(probs, n_classes)
    figures["frechet"] = round(frechet_distance(*gaussian_stats(feats), cached["mu"].numpy(),
                                                cached["sigma"].numpy()), 3)
    if want is not None:  # conditional: does the classifier see the digit that was asked for?
        figures["label_accuracy"] = round((probs.argmax(1) == want.cpu()).float().mean().item(), 4)
    return figures


# -- 6. Generate: sample from a saved generator without the training code ------------------
def generate(args, device):
    netG = load_generator(args.generate)
    inputs = [n for n in netG.graph.nodes if n.op == "placeholder"]
    z_dim = int(inputs[0].meta["val"].shape[1])
    emb = [p for name, p in netG.named_parameters() if name.endswith("label_emb.weight")]
    n_classes = emb[0].shape[0] if len(inputs) == 2 and emb else 0
    if args.label is not None and not n_classes:
        fail(f"--label needs a conditional generator; {args.generate} was trained without --conditional")
    if n_classes and args.label is not None and not 0 <= args.label < n_classes:
        fail(f"--label must be in 0..{n_classes - 1} for {args.generate}")
    set_seed(args.seed)
    noise = torch.randn(args.num_samples, z_dim)
    extra = ()
    if n_classes:  # without --label: every class in turn, one row per class
        labels = torch.full((args.num_samples,), args.label) if args.label is not None else \
            torch.arange(args.num_samples) % n_classes
        extra = (labels,)
    with torch.no_grad():
        images = netG(noise, *extra).clamp(-1, 1)
    nrow = n_classes if n_classes and args.label is None else 8
    path = save_image_grid(images, os.path.join(make_out_dir(args.out), "generated.png"), nrow=nrow)
    print(f"wrote {args.num_samples} samples (z_dim {z_dim}{', label ' + str(args.label) if args.label is not None else ''}) to {path}")
    if args.save_images:
        save_images(images, args.save_images)
        print(f"wrote {args.num_samples} PNG files to {args.save_images}")
    return 0


# -- main: the tutorials' steps in order -----------------------------------------------------
def main(argv=None):
    args = parse_args(argv)
    plt = use_agg_unless(args.show)
    device = pick_device(args.device)
    if args.generate:
        return generate(args, device)
    print("arguments: " + format_flags(args))
    print(f"seed: {args.seed}\ndevice: {device}")
    set_seed(args.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    # Data (the cookbook's transform; seed 002's ImageFolder for --dataset folder)
    images, labels, classes, test_images, test_labels = load_data(args)
    full_images, full_labels = images, labels
    if args.conditional and labels is None:
        fail(f"--conditional needs labelled data (class subfolders); {args.dataroot} has one class")
    if args.subset and args.subset < len(images):  # fixed subset, the same for every --seed
        keep = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:args.subset]
        images, labels = images[keep], None if labels is None else labels[keep]
    if len(images) < 2:
        fail("need at least 2 training images (batch norm)")
    n_classes = len(classes)
    print(f"data: {len(images)} images of {n_classes} class(es) from {args.dataset} ({args.dataroot})")

    # Networks, weights_init and the torchsummary summaries
    generator, discriminator = build_models(args.arch, args.z_dim, n_classes if args.conditional else 0)
    print_summaries(generator, discriminator, args.z_dim)
    generator, discriminator = generator.to(device), discriminator.to(device)
    noise_fn = lambda num: torch.randn((num, args.z_dim), device=device)  # seed 002: torch.rand, not normal
    gan = DCGAN(generator, discriminator, noise_fn, images.to(device),
                None if labels is None else labels.to(device), args, device)
    print(f"autocast: {'bf16' if gan.amp else 'off (float32)'}")

    # fixed_noise: 64 images (8 x 8); conditional: one row of 10 per class
    if args.conditional:
        fixed_labels = torch.arange(n_classes).repeat_interleave(10).to(device)
        fixed_noise, nrow = torch.randn(len(fixed_labels), args.z_dim, device=device), 10
    else:
        fixed_labels, fixed_noise, nrow = None, torch.randn(64, args.z_dim, device=device), 8

    out = make_out_dir(args.out)
    ckpt_path = os.path.join(out, "checkpoint.pt")
    if args.resume:
        ckpt = load_checkpoint(args.resume)
        saved = ckpt.get("model", {}) if isinstance(ckpt, dict) else {}
        want = {"arch": args.arch, "z_dim": args.z_dim, "n_classes": generator.n_classes}
        if saved != want:
            fail(f"{args.resume} holds a model with {saved or 'unknown settings'}, this run builds "
                 f"{want}; pass the matching --arch / --z-dim / --conditional, or drop --resume")
        try:
            gan.load_state_dict(ckpt)
        except (KeyError, RuntimeError, ValueError) as e:
            fail(f"{args.resume} does not fit this model ({type(e).__name__}); drop --resume to start afresh")
        fixed_noise = ckpt["fixed_noise"].to(device)
        if gan.perm is not None and len(gan.perm) != len(images):
            fail(f"{args.resume} was stopped mid-epoch on {len(gan.perm)} images, this data has "
                 f"{len(images)}; resume with the same --dataset / --dataroot / --subset")
        set_rng_state(ckpt["rng"])
        print(f"resumed from {args.resume}: epoch {gan.epoch + 1}, batch {gan.batch}, iteration {gan.iterations}")
    metrics = MetricsCSV(os.path.join(out, "metrics.csv"), append=bool(args.resume))

    def log(**row):
        metrics.write(**{**dict.fromkeys(["epoch", "iteration", "g_loss", "d_loss", "d_x", "d_g_z",
                                          "images_per_sec", "classes_covered", "class_ratio",
                                          "confidence", "frechet", "label_accuracy"], ""), **row})

    def snapshot(samples):
        path = os.path.join(out, f"fake_iter_{gan.iterations:06d}.png")
        save_image_grid(samples, path, nrow=nrow)
        if os.path.basename(path) not in gan.image_list:
            gan.image_list.append(os.path.basename(path))

    def save_checkpoint():
        atomic_save({**gan.state_dict(), "fixed_noise": fixed_noise.cpu(), "rng": rng_state(),
                     "model": {"arch": args.arch, "z_dim": args.z_dim, "n_classes": generator.n_classes},
                     "args": {k: v for k, v in vars(args).items()}}, ckpt_path)

    clf = cached = None
    if args.eval and labels is not None:
        clf, cached = get_classifier(args, full_images, full_labels, test_images, n_classes, device)
        r = cached["real"]
        print(f"quality reference, real vs real: classes {r['classes_covered']}/{n_classes}, ratio "
              f"{r['class_ratio']:.2f}, confidence {r['confidence']:.3f}, Frechet {r['frechet']:.2f}")
    elif args.eval:
        print("note: --eval needs labelled data (class subfolders); no quality figures")

    # Training loop (cookbook steps 10-29)
    quality = {}
    with StopOnCtrlC() as ctrl_c:
        stop = lambda: ctrl_c.requested or args.dry_run
        while gan.epoch < args.epochs:
            finished = gan.train_epoch(args.epochs, (fixed_noise, fixed_labels), snapshot, log, stop)
            if finished and clf is not None:
                quality = evaluate(gan, clf, cached, args, n_classes)
                print("quality: " + ", ".join(f"{k} {v}" for k, v in quality.items()), flush=True)
                log(epoch=gan.epoch, iteration=gan.iterations - 1, g_loss=round(gan.g_losses[-1], 5),
                    d_loss=round(gan.d_losses[-1], 5), **quality)
            save_checkpoint()
            if ctrl_c.requested:
                print(f"saved {ckpt_path}; continue with --resume {ckpt_path}", file=sys.stderr)
                raise KeyboardInterrupt
            if args.dry_run:
                break
    if args.dry_run and clf is not None and not quality:
        quality = evaluate(gan, clf, cached, args, n_classes)

    # Results: the cookbook's "visualise" recipe, as files
    if not gan.image_list:  # e.g. --resume of a finished run: draw the final grid now
        snapshot(gan.generate_samples(fixed_noise, fixed_labels))
    save_loss_plot(os.path.join(out, "losses.png"), {"Generator": gan.g_losses, "Discriminator": gan.d_losses})
    grids = [transforms.functional.to_tensor(Image.open(os.path.join(out, name)).convert("RGB"))
             for name in gan.image_list if os.path.isfile(os.path.join(out, name))]
    save_progress_gif(grids, os.path.join(out, "progress.gif"))
    final = gan.generate_samples(fixed_noise, fixed_labels)
    save_image_grid(final, os.path.join(out, "fake_samples.png"), nrow=nrow)
    if args.conditional:  # real images in the same layout: one row per class
        real_idx = torch.cat([(labels == c).nonzero().view(-1)[:10] for c in range(n_classes)])
    else:
        real_idx = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:64]
    save_real_vs_fake(to_model_range(images[real_idx]), image_grid(final, nrow), os.path.join(out, "real_vs_fake.png"), nrow=nrow)
    example = (torch.randn(2, args.z_dim),) + ((torch.tensor([0, 1]),) if args.conditional else ())
    export_generator(copy.deepcopy(gan.sampler()).cpu().float(), example, os.path.join(out, "generator.pt2"))
    if args.show:
        plt.show()
    print(f"wrote generator.pt2, checkpoint.pt, metrics.csv, losses.png, {len(gan.image_list)} "
          f"fake_iter_*.png, fake_samples.png, progress.gif, real_vs_fake.png to {out}")
    if quality:
        print("final quality: " + ", ".join(f"{k} {v}" for k, v in quality.items())
              + f" (real vs real Frechet: {cached['real']['frechet']})")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
