"""DCGAN on MNIST digits: the cookbook's DCGAN recipes, then the PNG-folder DCGAN tutorial.

In their order and under their names: the cookbook chapter "Exploring Generative Adversarial
Networks" (recipes "Creating a DCGAN generator", "Creating a DCGAN discriminator", "Training the
DCGAN model", "Visualizing DCGAN results"); then "How to build a DCGAN with PyTorch"
(https://towardsdatascience.com/how-to-build-a-dcgan-with-pytorch-31bfbf2ad96a): its networks
(--arch dropout) and its PNG folders (--dataset folder --no-decode-once); then the additions,
appendices A-F, each reached from main by one call. Writes to --out: checkpoint.pt (--resume),
metrics.csv, the figures, generator_weights.pt (--generate) and generator.pt2, for any project:
torch.export.load(path).module()(z[, labels]) gives (N, 1, 28, 28) in [-1, 1]. Usage: README.md.
Copy this file together with common.py.
"""
import argparse
import contextlib
import copy
import csv
import datetime
import functools
import hashlib
import io
import itertools
import os
import sys
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
import torchvision
import torchvision.transforms as transforms
import torchvision.utils as vutils
from PIL import Image
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Subset, TensorDataset
from torchsummary import summary
from torchvision.datasets import ImageFolder

from common import (ArgumentParser, UserError, atomic_save, command_line, fail, ignore_signals,
                    int_range, load_checkpoint, number, parse, pick_device, positive_float,
                    positive_int, prepare_out, run, save_generator, seed_int, stop_on_ctrl_c,
                    unit_interval)

SCRIPT = "dcgan_mnist"
ARCH_Z_DIM = {"cookbook": 100, "dropout": 16}  # the cookbook's z_dim; the PNG tutorial's 16
# --tutorial: the cookbook's settings (Adam's defaults, batch 128, labels 1 and 0, G itself,
# float32, files decoded by a DataLoader every epoch)
TUTORIAL_SETTINGS = {"batch_size": 128, "lr": 1e-3, "lr_d": 1e-3, "beta1": 0.9,
                     "real_label": 1.0, "ema": 0.0, "decode_once": False, "amp": False,
                     "channels_last": False}
MAY_CHANGE = ("epochs", "workers", "device", "log_every", "sample_every", "eval",
              "eval_samples", "download")  # what --resume may change; the rest is the run's
FIELDS = ["epoch", "iteration", "g_loss", "d_loss", "d_x", "d_g_z", "images_per_sec",
          "classes_covered", "class_ratio", "confidence", "frechet", "label_accuracy"]


def build_parser():
    p = ArgumentParser(description="DCGAN on MNIST, Fashion-MNIST or a folder of images: the "
                       "cookbook's DCGAN recipes and the PNG-folder DCGAN tutorial.")
    g = p.add_argument_group("the tutorial's inputs")
    g.add_argument("--tutorial", action="store_true", help="the cookbook's settings: " + " ".join(
        ("--" if v else "--no-") + k.replace("_", "-") if isinstance(v, bool) else
        f"--{k.replace('_', '-')} {v}" for k, v in TUTORIAL_SETTINGS.items()))
    g.add_argument("--epochs", type=int_range(1, 10000), default=50, help="num_epochs")
    # Better than the cookbook (10 epochs x 5,000 real digits, 4 seeds; benchmarks/README.md):
    # batch 64 (twice the updates per epoch), beta1 0.5, real label 0.9 and the --ema average.
    g.add_argument("--batch-size", type=int_range(2, 4096), default=64, help="(cookbook: 128)")
    g.add_argument("--lr", type=positive_float, default=1e-3, help="goptimizer's (cookbook's)")
    g.add_argument("--lr-d", type=positive_float, help="doptimizer's (default: --lr)")
    g.add_argument("--beta1", type=unit_interval, default=0.5, help="Adam's (cookbook: 0.9)")
    g.add_argument("--real-label", type=number(lambda v: 0 < v <= 1, "in (0, 1]"), default=0.9,
                   help="real_label; below 1: one-sided label smoothing (cookbook: 1)")
    g.add_argument("--z-dim", type=int_range(1, 1024), help="z_dim (default: 100; dropout: 16)")
    g.add_argument("--g-updates", type=int_range(1, 5), default=1,
                   help="G steps per D step (the cookbook's \"There's more\")")
    g.add_argument("--arch", choices=sorted(ARCH_Z_DIM), default="cookbook",
                   help="dropout: the PNG-folder tutorial's Generator and Discriminator")
    g.add_argument("--batchnorm", action=argparse.BooleanOptionalAction, default=True,
                   help="batch norm in --arch dropout's generator (its switch)")
    g = p.add_argument_group("data and speed")
    g.add_argument("--dataset", choices=["mnist", "fashion-mnist", "folder"], default="mnist",
                   help="folder: one subfolder per class, as mnist_png/training")
    g.add_argument("--dataroot", default="data", help="where the data are (read only)")
    g.add_argument("--download", action=argparse.BooleanOptionalAction, default=True,
                   help="download MNIST/Fashion-MNIST into --dataroot when missing")
    g.add_argument("--subset", type=positive_int, help="train on a fixed random subset")
    g.add_argument("--decode-once", action=argparse.BooleanOptionalAction, default=True,
                   help="batches from images decoded once (no: the DataLoader, every epoch)")
    g.add_argument("--workers", type=int_range(0, 64), default=2, help="num_workers")
    g.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                   help="bf16 autocast where the GPU or CPU has bf16")
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                   help="G's weights in NHWC, which fast convolutions prefer")
    g = p.add_argument_group("additions")
    g.add_argument("--conditional", action="store_true", help="G and D are given the class")
    g.add_argument("--ema", type=unit_interval, default=0.995,
                   help="samples from a moving average of G with this decay (0: from G)")
    g.add_argument("--eval", action=argparse.BooleanOptionalAction,
                   help="judge the samples every epoch (default: with labels, no --dry-run)")
    g.add_argument("--eval-samples", type=int_range(100, 20000), default=5000)
    g.add_argument("--log-every", type=positive_int, default=50, help="stats line every N")
    g.add_argument("--sample-every", type=positive_int, default=500, help="grid every N")
    g = p.add_argument_group("run control")
    g.add_argument("--seed", type=seed_int, default=999)
    g.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto",
                   help="auto: the cookbook's, cuda if there is one, else cpu")
    g.add_argument("--out", default="outputs/dcgan_mnist", help="folder for everything written")
    g.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    g.add_argument("--resume", metavar="PATH", help="continue the run of this checkpoint.pt")
    g.add_argument("--dry-run", action="store_true", help="one iteration, then every file")
    g.add_argument("--show", action="store_true", help="also show the figures in windows")
    g.add_argument("--generate", metavar="PATH",
                   help="no training: samples from a run's generator_weights.pt (or checkpoint)")
    g.add_argument("--num-samples", type=int_range(1, 10000), default=64, help="for --generate")
    g.add_argument("--label", type=int_range(0, 9999), help="for --generate: the class drawn")
    return p


def parse_args(parser, argv):
    """(args, checkpoint), with the defaults that depend on other flags; --show."""
    args, checkpoint = parse(parser, argv, TUTORIAL_SETTINGS, SCRIPT, MAY_CHANGE)
    if args.label is not None and not args.generate:
        parser.error("--label goes with --generate")
    args.z_dim = args.z_dim or ARCH_Z_DIM[args.arch]
    args.lr_d = args.lr_d or args.lr
    args.eval = not args.dry_run if args.eval is None else args.eval
    if not args.show:
        plt.switch_backend("Agg")  # figures as files only
    return args, checkpoint


def idle_flags(args, amp):
    """The flags that do nothing in this run: the `arguments:` line leaves them out."""
    idle = {"download": args.dataset == "folder", "amp": args.amp and not amp,
            "batchnorm": args.arch == "cookbook", "eval_samples": not args.eval,
            "lr_d": args.lr_d == args.lr, "num_samples": True}
    return [dest for dest, unused in idle.items() if unused]


# == The cookbook, "Creating a DCGAN generator" ==============================================
def load_data(args):
    """Its steps 2 and 3, the transform and the device; with the images it transforms (MNIST,
    or the PNG-folder tutorial's ImageFolder below). Returns (dataset, device)."""
    transform = transforms.Compose([
        transforms.ToTensor(),
        transforms.Normalize((0.5, ), (0.5, )),
    ])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.device != "auto":  # --device: that one, or an error if it is not here
        device = pick_device(args.device)
    if args.dataset == "folder":
        return png_folder(args), device
    return torchvision_dataset(args, transform), device  # appendix A


class Generator_model(nn.Module):
    def __init__(self, z_dim, n_classes=0):
        super().__init__()
        self.fc = nn.Linear(z_dim, 256 * 7 * 7)
        self.gen = nn.Sequential(
            nn.ConvTranspose2d(256, 128, 4, 2, 1),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(0.01),
            nn.ConvTranspose2d(128, 64, 3, 1, 1),
            nn.BatchNorm2d(64),
            nn.LeakyReLU(0.01),
            nn.ConvTranspose2d(64, 1, 4, 2, 1),
            nn.Tanh()
        )
        self.n_classes = n_classes  # Addition (--conditional): a learned vector per class added
        if n_classes:  # to fc's output, the same as one-hot labels concatenated to the noise
            self.label_emb = nn.Embedding(n_classes, 256 * 7 * 7)
            nn.init.zeros_(self.label_emb.weight)  # it starts as the unconditional model

    def forward(self, input, labels=None):
        x = self.fc(input)
        if self.n_classes:
            x = x + self.label_emb(labels)
        x = x.view(-1, 256, 7, 7)
        return self.gen(x)


# == The cookbook, "Creating a DCGAN discriminator" ==========================================
class Discriminator_model(nn.Module):
    def __init__(self, n_classes=0):
        super().__init__()
        self.disc = nn.Sequential(
            nn.Conv2d(1, 32, 3, 2, 1),
            nn.LeakyReLU(0.01),
            nn.Conv2d(32, 64, 3, 2, 1),
            nn.BatchNorm2d(64),
            nn.LeakyReLU(0.01),
            nn.Conv2d(64, 128, 3, 2, 1),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(0.01)
        )
        self.fc = nn.Linear(2048, 1)
        self.n_classes = n_classes  # Addition (--conditional): a projection discriminator
        if n_classes:  # (Miyato & Koyama 2018) adds <a learned vector of the class, features>
            self.label_emb = nn.Embedding(n_classes, 2048)
            nn.init.zeros_(self.label_emb.weight)

    def forward(self, input, labels=None):
        x = self.disc(input)
        x = x.view(-1, 2048)
        logit = self.fc(x)  # Better: a logit for BCEWithLogitsLoss (the cookbook: F.sigmoid)
        if self.n_classes:
            logit = logit + (self.label_emb(labels) * x).sum(1, keepdim=True)
        return logit


# == The cookbook, "Training the DCGAN model" ================================================
def weights_init(m):
    classname = m.__class__.__name__
    if classname.find('Conv') != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find('BatchNorm') != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


def main(argv=None):
    """The cookbook's steps in its order; each addition is set up once, by one call."""
    parser = build_parser()
    args, checkpoint = parse_args(parser, argv)
    if args.generate:
        return generate(args)  # appendix F
    prepare_out(args.out, new_run=not args.resume, overwrite=args.overwrite, hold=False)
    torch.manual_seed(args.seed)
    dataset, device = load_data(args)
    amp = args.amp and (torch.cuda.is_bf16_supported() if device.type == "cuda" else
                        device.type == "cpu" and torch.cpu._is_avx512_bf16_supported())
    print("arguments: " + command_line(parser, args, idle_flags(args, amp)), flush=True)
    images, labels = decode_once(dataset, args)  # appendix A: every image, decoded once
    loader_gen = torch.Generator().manual_seed(args.seed)  # the shuffles; --resume restores it
    train_loader = training_batches(args, dataset, images, labels, loader_gen, device)
    z_dim, n_classes = args.z_dim, len(dataset.classes)
    n_cond = n_classes if args.conditional else 0
    if args.arch == "cookbook":
        generator = Generator_model(z_dim, n_cond).to(device)
        discriminator = Discriminator_model(n_cond).to(device)
        generator.apply(weights_init)
        discriminator.apply(weights_init)
    else:  # the PNG-folder tutorial's networks, with PyTorch's own initialisation
        generator = Generator(z_dim, args.batchnorm, n_cond).to(device)
        discriminator = Discriminator(n_cond).to(device)
    if not n_cond and device.type != "mps":  # torchsummary feeds float CPU/CUDA inputs only
        summary(generator, (z_dim, ))
        summary(discriminator, (1, 28, 28))
    criterion = nn.BCEWithLogitsLoss()  # the cookbook: nn.BCELoss() after D's sigmoid
    fixed_noise = torch.randn(64, z_dim, device=device)
    doptimizer = optim.Adam(discriminator.parameters(), lr=args.lr_d, betas=(args.beta1, 0.999))
    goptimizer = optim.Adam(generator.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    real_label, fake_label = args.real_label, 0
    image_list = []
    g_losses = []
    d_losses = []
    iterations = 0
    num_epochs = args.epochs

    # Additions, each set up once here and about one line in the loop
    if args.channels_last:  # G's transposed convolutions ~15% faster on a CPU
        generator.to(memory_format=torch.channels_last)
    ctx = torch.autocast(device.type, torch.bfloat16) if amp else contextlib.nullcontext()
    print(f"device: {device}, {'bf16 autocast' if amp else 'float32'}", flush=True)
    ema = ema_of(generator, args.ema)  # B: the samples come from G's moving average ...
    sampler = functools.partial(sampling_copy, copy.deepcopy(generator), ema.module if ema else
                                generator, z_dim, n_cond)  # B: ... with batch norm of its own
    cond_of = (lambda data: [data[1].to(device)]) if n_cond else (lambda data: [])  # C
    fixed_cond = [(torch.arange(64) % n_cond).to(device)] if n_cond else []  # C: class/column
    loss_iterations, start_epoch, start_batch, quality = [], 0, 0, None
    parts = {"generator": generator, "discriminator": discriminator, "ema": ema,
             "goptimizer": goptimizer, "doptimizer": doptimizer, "g_losses": g_losses,
             "d_losses": d_losses, "loss_iterations": loss_iterations, "image_list": image_list}
    clf, reference = quality_classifier(args, images, labels, n_classes, device)  # E
    if checkpoint:  # D: --resume, every part as it was saved
        start_epoch, start_batch, iterations = restore(checkpoint, parts, loader_gen, device)
    out, out_lock = args.out, prepare_out(args.out, not args.resume, args.overwrite)
    metrics = csv.DictWriter(open(os.path.join(out, "metrics.csv"), "a" if args.resume else "w",
                                  newline="", buffering=1), FIELDS)
    if not args.resume:
        metrics.writeheader()
    ckpt_path, total = os.path.join(out, "checkpoint.pt"), num_epochs * len(train_loader)

    start = time.time()
    with stop_on_ctrl_c() as stop:
        for epoch in range(start_epoch, num_epochs):
            print(f"Epoch {epoch+1}; Elapsed time = {int(time.time() - start)}s")  # PNG tutorial
            print(f'Epoch : | {epoch+1:03} / {num_epochs:03} |')
            epoch_rng, t0, seen = loader_gen.get_state(), time.perf_counter(), 0
            i = start_batch - 1  # (the last batch done, if the epoch has none left)
            for i, data in itertools.islice(enumerate(train_loader), start_batch, None):
                discriminator.zero_grad()
                real_images = data[0].to(device)
                size = real_images.size(0)
                cond = cond_of(data)  # C: --conditional, the classes of the batch
                label = torch.full((size,), real_label, device=device)
                with ctx:  # B: bf16 autocast (--amp), else nothing
                    d_output = discriminator(real_images, *cond).view(-1)
                    derror_real = criterion(d_output, label)
                derror_real.backward()
                d_x = d_output.detach()  # D(x), for metrics.csv
                noise = torch.randn(size, z_dim, device=device)
                with ctx:
                    fake_images = generator(noise, *cond)
                    label.fill_(0)
                    d_output = discriminator(fake_images.detach(), *cond).view(-1)
                    derror_fake = criterion(d_output, label)
                derror_fake.backward()
                derror_total = derror_real + derror_fake
                doptimizer.step()
                for g_step in range(args.g_updates):  # --g-updates: "There's more"
                    if g_step:  # a second or third G step draws fresh fakes
                        with ctx:
                            fake_images = generator(torch.randn_like(noise), *cond)
                    generator.zero_grad()
                    label.fill_(1)
                    with ctx:
                        d_output = discriminator(fake_images, *cond).view(-1)
                        gerror = criterion(d_output, label)
                    gerror.backward()
                    goptimizer.step()
                if ema:
                    ema.update_parameters(generator)
                seen += size
                last = (epoch == num_epochs-1) and (i == len(train_loader)-1) or args.dry_run
                if i % args.log_every == 0 or last:
                    rate = seen / (time.perf_counter() - t0)
                    eta = datetime.timedelta(seconds=round((total - iterations - 1) * size / rate))
                    print(f'| {i:03} / {len(train_loader):03} | G Loss: {gerror.item():.3f} '
                          f'| D Loss: {derror_total.item():.3f} | {rate:.0f} img/s | ETA {eta} |')
                    g_losses.append(gerror.item())
                    d_losses.append(derror_total.item())
                    loss_iterations.append(iterations)
                    metrics.writerow({  # D(x), D(G(z)): D's mean probabilities, "real"
                        "epoch": epoch + 1, "iteration": iterations, "images_per_sec": round(rate),
                        "g_loss": round(g_losses[-1], 5), "d_loss": round(d_losses[-1], 5),
                        "d_x": round(d_x.float().sigmoid().mean().item(), 4),
                        "d_g_z": round(d_output.detach().float().sigmoid().mean().item(), 4)})
                if (iterations % args.sample_every == 0) or last:
                    with torch.no_grad():
                        fake_images = sampler()(fixed_noise, *fixed_cond).detach().cpu()
                        image_list.append(vutils.make_grid(fake_images, padding=2, normalize=True,
                                                           nrow=n_cond or 8))
                    vutils.save_image(image_list[-1], f"{out}/fake_iter_{iterations:06d}.png")
                iterations += 1
                if stop.requested or args.dry_run:
                    break
            start_batch, finished = 0, i + 1 == len(train_loader)
            if clf is not None and finished:  # E: the quality of this epoch's samples
                quality = evaluate(sampler(), clf, reference, args, n_classes, device)
                metrics.writerow({"epoch": epoch + 1, "iteration": iterations - 1, **quality})
            save_checkpoint(ckpt_path, args, parts, epoch=epoch + finished, iterations=iterations,
                            batch=0 if finished else i + 1,  # D: where --resume goes on
                            loader_rng=loader_gen.get_state() if finished else epoch_rng)
            if stop.requested:
                print(f"saved {ckpt_path}; continue with --resume {ckpt_path}", file=sys.stderr)
                raise KeyboardInterrupt
            if args.dry_run:
                break

    results(args, g_losses, d_losses, loss_iterations, image_list, out)
    write_extras(args, out, image_list, images, n_cond, sampler())  # appendix F
    if quality:
        print(f"final quality: {quality_text(quality, n_classes)} (real images: Frechet "
              f"{reference['frechet']:.2f})")
    del out_lock  # the end of the run: --out is free again
    return 0


# == The cookbook, "Visualizing DCGAN results" ===============================================
def results(args, g_losses, d_losses, loss_iterations, image_list, out):
    """The loss plot and the last fixed-noise grid, as files (and windows with --show)."""
    marker = "o" if len(g_losses) <= 50 else None  # a short run's few points, visible
    plt.figure(figsize=(10,5))
    plt.title("Generator and Discriminator Loss During Training")
    plt.plot(loss_iterations, g_losses, label="Generator", marker=marker)
    plt.plot(loss_iterations, d_losses, label="Discriminator", marker=marker)
    plt.xlabel("iterations")
    plt.ylabel("Loss")
    plt.legend()
    plt.savefig(os.path.join(out, "losses.png"))
    for image in image_list[-1:]:  # the cookbook shows each grid; the last is the result
        plt.figure(figsize=(8, 8))
        plt.axis("off")
        plt.imshow(np.transpose(image.numpy(), (1, 2, 0)))
        plt.savefig(os.path.join(out, "fake_samples.png"), bbox_inches="tight")
    if args.show:
        plt.show()


# == "How to build a DCGAN with PyTorch": its networks and its data ==========================
class Generator(nn.Module):
    def __init__(self, latent_dim=16, batchnorm=True, n_classes=0):
        super().__init__()
        self.latent_dim = latent_dim
        self.batchnorm = batchnorm
        self.n_classes = n_classes
        self._init_modules()

    def _init_modules(self):
        self.linear1 = nn.Linear(self.latent_dim, 256 * 7 * 7, bias=False)
        self.bn1d1 = nn.BatchNorm1d(256 * 7 * 7) if self.batchnorm else None
        self.leaky_relu = nn.LeakyReLU()
        self.conv1 = nn.Conv2d(256, 128, 5, 1, 2, bias=False)
        self.bn2d1 = nn.BatchNorm2d(128) if self.batchnorm else None
        self.conv2 = nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False)
        self.bn2d2 = nn.BatchNorm2d(64) if self.batchnorm else None
        self.conv3 = nn.ConvTranspose2d(64, 1, 4, 2, 1, bias=False)
        self.tanh = nn.Tanh()
        if self.n_classes:  # Addition (--conditional), as in Generator_model
            self.label_emb = nn.Embedding(self.n_classes, 256 * 7 * 7)
            nn.init.zeros_(self.label_emb.weight)

    def forward(self, input_tensor, labels=None):
        intermediate = self.linear1(input_tensor)
        if self.n_classes:
            intermediate = intermediate + self.label_emb(labels)
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


class Discriminator(nn.Module):
    def __init__(self, n_classes=0):
        super().__init__()
        self.n_classes = n_classes
        self._init_modules()

    def _init_modules(self):
        self.conv1 = nn.Conv2d(1, 64, 5, 2, 2)
        self.leaky_relu = nn.LeakyReLU()
        self.dropout_2d = nn.Dropout2d(0.3)
        self.conv2 = nn.Conv2d(64, 128, 5, 2, 2)
        self.linear1 = nn.Linear(128 * 7 * 7, 1)
        if self.n_classes:  # Addition (--conditional), as in Discriminator_model
            self.label_emb = nn.Embedding(self.n_classes, 128 * 7 * 7)
            nn.init.zeros_(self.label_emb.weight)

    def forward(self, input_tensor, labels=None):
        intermediate = self.dropout_2d(self.leaky_relu(self.conv1(input_tensor)))
        intermediate = self.dropout_2d(self.leaky_relu(self.conv2(intermediate)))
        intermediate = intermediate.view((-1, 128 * 7 * 7))
        output_tensor = self.linear1(intermediate)  # the tutorial: then nn.Sigmoid()
        if self.n_classes:
            output_tensor = output_tensor + (self.label_emb(labels) * intermediate).sum(1, True)
        return output_tensor


def png_folder(args):
    """Its transform and ImageFolder: one subfolder per class, as mnist_png/training/0/..."""
    transform = transforms.Compose([
        transforms.Grayscale(num_output_channels=1),
        transforms.Resize(28), transforms.CenterCrop(28),  # Addition: any size, as 28x28
        transforms.ToTensor(),
        transforms.Normalize((0.5,), (0.5,))
    ])
    try:
        dataset = ImageFolder(root=args.dataroot, transform=transform)
    except (FileNotFoundError, NotADirectoryError) as e:
        fail(f"--dataroot {args.dataroot} is not a folder of class subfolders with images, "
             f"as mnist_png/training/0/*.png ({str(e).split('. ')[0]})")
    if args.conditional and len(dataset.classes) < 2:
        fail(f"--conditional needs two or more class subfolders in {args.dataroot}")
    return dataset


def training_batches(args, dataset, images, labels, generator, device):
    """train_loader: its DataLoader (--no-decode-once), or the same batches, shuffled by the
    same generator, cut from the images decoded once (appendix A)."""
    keep = torch.arange(len(images))
    if args.subset and args.subset < len(images):  # a fixed subset, the same for every --seed
        keep = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
        keep = keep[:args.subset].sort().values
    drop_last = len(keep) % args.batch_size == 1  # batch norm needs 2 images in a batch
    print(f"data: {len(keep)} images of {len(dataset.classes)} class(es) from {args.dataroot}")
    if not args.decode_once:
        return DataLoader(Subset(dataset, keep.tolist()), batch_size=args.batch_size,
                          shuffle=True, num_workers=args.workers, generator=generator,
                          drop_last=drop_last, worker_init_fn=ignore_signals)
    data = TensorDataset(images[keep].to(device), labels[keep].to(device))
    batches = BatchSampler(RandomSampler(data, generator=generator), args.batch_size, drop_last)
    return DataLoader(data, sampler=batches, batch_size=None, generator=generator)


# == Appendix A: the images decoded once; MNIST ==============================================
def decode_once(dataset, args):
    """Every image through its dataset's transform once, as one (N, 1, 28, 28) tensor, and the
    labels. Unreadable files are left out with a warning (the DataLoader would stop at one)."""
    parts = list(DataLoader(range(len(dataset)), batch_size=500, num_workers=args.workers,
                            collate_fn=functools.partial(decode_batch, dataset),
                            worker_init_fn=ignore_signals))
    bad = {i for _, _, unreadable in parts for i in unreadable}
    if len(bad) == len(dataset):
        fail(f"none of the {len(dataset)} image files in {args.dataroot} could be read")
    if bad:  # the tutorial's DataLoader too reads only the others
        print(f"warning: skipped {len(bad)} unreadable image file(s), e.g. "
              f"{dataset.samples[min(bad)][0]}", file=sys.stderr)
        dataset.samples = [s for j, s in enumerate(dataset.samples) if j not in bad]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def decode_batch(dataset, indices):
    """collate_fn: (images, labels, unreadable indices)."""
    items, bad = [], []
    for i in indices:
        try:
            items.append(dataset[i])
        except Exception:  # truncated, corrupt or not an image at all
            bad.append(i)
    return (torch.stack([x for x, _ in items] or [torch.empty(1, 28, 28)])[:len(items)],
            torch.tensor([c for _, c in items], dtype=torch.long), bad)


def torchvision_dataset(args, transform):
    """MNIST/FashionMNIST with the cookbook's transform, from --dataroot (or downloaded there);
    a failed download leaves no folders behind."""
    cls = getattr(torchvision.datasets, {"mnist": "MNIST"}.get(args.dataset, "FashionMNIST"))
    raw = os.path.join(args.dataroot, cls.__name__, "raw")
    made = [d for d in (raw, os.path.dirname(raw), args.dataroot) if not os.path.isdir(d)]
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return cls(args.dataroot, train=True, transform=transform, download=args.download)
    except Exception as e:  # offline, or files that are not MNIST's
        for d in made:  # the empty folders of a failed download
            with contextlib.suppress(OSError):
                os.rmdir(d)
        why = "could not be downloaded (offline?)" if args.download else "is missing or broken"
        fail(f"{cls.__name__} {why} ({type(e).__name__}); put " + ", ".join(
            os.path.basename(u)[:-3] for u, _ in cls.resources) + f" (gunzipped) in {raw}/")


# == Appendix B: samples from G's moving average, with batch-norm statistics of their own ====
def ema_of(generator, decay):
    """torch's AveragedModel of G, a bias-corrected exponential average (renormalised as Adam's
    moments are), so a short run is not pulled toward the random initial weights."""
    def multi_avg_fn(averaged, current, num_averaged):
        weight = (1 - decay) / (1 - decay ** (num_averaged + 1).double())
        torch._foreach_lerp_(averaged, current, weight.float())
    return AveragedModel(generator, multi_avg_fn=multi_avg_fn, use_buffers=False) if decay \
        else None


def sampling_copy(copy_g, source, z_dim, n_cond, size=512):
    """copy_g with source's weights in eval mode (a sample does not depend on its batch) and
    batch-norm statistics recomputed for them from one train-mode pass on fresh noise (the idea
    of swa_utils.update_bn): training's running statistics belong to older weights, and an
    average never had its own. Touches neither source nor training's random stream."""
    copy_g.load_state_dict(source.state_dict())
    for m in copy_g.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: here, of the one pass
    g, device = torch.Generator().manual_seed(0), next(copy_g.parameters()).device
    labels = [torch.randint(n_cond, (size,), generator=g).to(device)] if n_cond else []
    with torch.no_grad():
        copy_g.train()(torch.randn(size, z_dim, generator=g).to(device), *labels)
    return copy_g.eval()


@torch.no_grad()
def draw(model, noise, labels=None):
    """Samples, float32 on the CPU, 1,000 at a time."""
    return torch.cat([model(z, *([] if labels is None else [labels[j:j + 1000]])).float().cpu()
                      for j, z in zip(range(0, len(noise), 1000), noise.split(1000))])


# == Appendix C, conditional labels: in the networks above, and cond_of in main ===============
# == Appendix D: checkpoint.pt, and --resume that ends where one run would ===================
def save_checkpoint(path, args, parts, **position):
    """Every part of the run, the random streams and where the next step starts, atomically."""
    state = {k: v.state_dict() if hasattr(v, "state_dict") else v for k, v in parts.items()}
    state["image_list"] = [(g * 255).round().byte() for g in parts["image_list"]]
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    atomic_save({"script": SCRIPT, "args": vars(args), **position, **state, "cuda_rng": cuda,
                 "rng": torch.get_rng_state(),
                 "settings": settings_of(args, parts["generator"].n_classes)}, path)


def restore(checkpoint, parts, loader_gen, device):
    """The saved parts into the live objects; returns (epoch, batch, iterations)."""
    try:
        for name, part in parts.items():
            if isinstance(part, list):
                part[:] = [g.float() / 255 for g in checkpoint[name]] if name == "image_list" \
                    else checkpoint[name]
            elif part is not None:
                part.load_state_dict(checkpoint[name])
        loader_gen.set_state(checkpoint["loader_rng"])
        torch.set_rng_state(checkpoint["rng"])
        if device.type == "cuda" and checkpoint["cuda_rng"]:
            torch.cuda.set_rng_state_all(checkpoint["cuda_rng"])
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as e:
        fail(f"the checkpoint does not fit this model ({type(e).__name__}); start a new run")
    print(f"resumed: epoch {checkpoint['epoch'] + 1}, batch {checkpoint['batch']}")
    return checkpoint["epoch"], checkpoint["batch"], checkpoint["iterations"]


# == Appendix E: sample quality, judged by a small classifier (--eval) ========================
def quality_classifier(args, images, labels, n_classes, device):
    """(classifier, reference): a small CNN whose features stand in for FID's Inception ones,
    trained once (Adam, up to 300 batches of 64) on one half of a seeded stratified split of the
    real images and cached in the user cache folder; the other half is the real reference. Its
    own random stream: training's (and --resume) is untouched."""
    if not args.eval or n_classes < 2:
        if args.eval:
            print("note: no quality figures: they need labels (class subfolders)")
        return None, None
    key = hashlib.sha256(images[::7].numpy().tobytes() + labels.numpy().tobytes() +
                         f"v3 {args.eval_samples}".encode()).hexdigest()[:16]
    path = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                        "gan-examples", f"dcgan_mnist_classifier_{key}.pt")
    fit, held_out = stratified_halves(labels)
    n, reference = min(args.eval_samples, len(fit), len(held_out)), None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        clf = nn.Sequential(nn.Sequential(
            nn.Conv2d(1, 32, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),  # 32 x 14 x 14
            nn.Conv2d(32, 64, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),  # 64 x 7 x 7
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU()), nn.Linear(128, n_classes))
        with contextlib.suppress(Exception):  # none yet, or unreadable: trained below
            saved = torch.load(path, map_location="cpu", weights_only=True)
            clf.load_state_dict(saved.pop("state_dict"))
            reference, done = saved, f"reused {path}"
        if reference is None:
            opt = optim.Adam(clf.to(device).parameters(), lr=2e-3)
            for step in range(min(300, max(50, len(fit) // 64))):
                idx = fit[torch.randint(len(fit), (64,))]
                loss = nn.functional.cross_entropy(clf(images[idx].to(device)),
                                                   labels[idx].to(device))
                opt.zero_grad()
                loss.backward()
                opt.step()
            # real vs real: the features of n images of one half against n of the other's
            (real, _), (ref, probs) = (classify(clf, images[half[:n]], device)
                                       for half in (fit, held_out))
            mu, sigma = ref.mean(0), torch.cov(ref.T)
            reference = {"mu": mu, "sigma": sigma, **figures(probs, real, mu, sigma), "accuracy":
                         (probs.argmax(1) == labels[held_out[:n]]).double().mean().item()}
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                atomic_save({"state_dict": clf.state_dict(), **reference}, path)
                done = f"trained; cached in {path}"
            except (OSError, UserError):
                done = f"trained (cannot write its cache, {path})"
    print(f"quality classifier: {done}\nquality, after each epoch: {args.eval_samples} samples "
          f"judged by this classifier ({reference['accuracy']:.1%} right on held-out real "
          f"images):\n  classes = how many of the {n_classes} it sees drawn; ratio = most / least "
          f"frequent class (1: even);\n  confidence = its mean top probability; Frechet = the "
          f"distance of their features to real images' (FID's formula, lower is better)\n"
          f"real images: {quality_text(reference, n_classes)}", flush=True)
    return clf.to(device).eval(), reference


def stratified_halves(labels, seed=0):
    """Two disjoint halves of the indices, each with half of every class, ordered so that every
    prefix keeps the classes' shares (a seeded stratified split)."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    order = order[labels[order].argsort(stable=True)]  # by class, shuffled within each
    counts = torch.bincount(labels)
    rank = torch.arange(len(order)) - (counts.cumsum(0) - counts).repeat_interleave(counts)
    share = rank.double() / counts.repeat_interleave(counts)  # how far into its class
    return [order[rank % 2 == h][share[rank % 2 == h].argsort(stable=True)] for h in (0, 1)]


@torch.no_grad()
def classify(clf, images, device):
    """Features (N, 128) in float64 and class probabilities (N, K), on the CPU."""
    features = torch.cat([clf[0](x.to(device).float()) for x in images.split(1000)])
    return features.double().cpu(), torch.softmax(clf[1](features), 1).cpu()


def figures(probs, features, mu, sigma):
    """Classes drawn, most/least frequent ratio (blank if one is never drawn), confidence, and
    the Frechet distance of the features to (mu, sigma): FID's formula, tr sqrtm(S1 S2) as the
    sum of the square roots of S1 S2's eigenvalues."""
    counts = torch.bincount(probs.argmax(1), minlength=probs.shape[1])
    s = torch.cov(features.T)
    root = torch.linalg.eigvals(s @ sigma).real.clamp(min=0).sqrt().sum()
    d = ((features.mean(0) - mu) ** 2).sum() + s.trace() + sigma.trace() - 2 * root
    return {"classes_covered": int((counts > 0).sum()), "class_ratio": round(
        counts.max().item() / counts.min().item(), 3) if counts.min() else "",
        "confidence": round(probs.max(1).values.mean().item(), 4),
        "frechet": round(max(0.0, d.item()), 3)}


def evaluate(g, clf, reference, args, n_classes, device):
    """The figures of --eval-samples images from a fixed noise (its own generator)."""
    z = torch.randn(args.eval_samples, args.z_dim, generator=torch.Generator().manual_seed(1))
    want = torch.arange(args.eval_samples) % n_classes
    features, probs = classify(clf, draw(g, z.to(device), want.to(device) if args.conditional
                                         else None), device)
    quality = figures(probs, features, reference["mu"], reference["sigma"])
    if args.conditional:  # does the classifier see the class that was asked for?
        quality["label_accuracy"] = round((probs.argmax(1) == want).double().mean().item(), 4)
    print(f"quality: {quality_text(quality, n_classes)}", flush=True)
    return quality


def quality_text(q, n_classes):
    ratio = f"ratio {q['class_ratio']:.2f}" if q["class_ratio"] != "" else \
        f"ratio undefined ({n_classes - q['classes_covered']} class(es) never drawn)"
    return (f"classes {q['classes_covered']}/{n_classes}, {ratio}, confidence "
            f"{q['confidence']:.3f}, Frechet {q['frechet']:.2f}" +
            (f", label accuracy {q['label_accuracy']:.3f}" if "label_accuracy" in q else ""))


# == Appendix F: more figures, the saved generator, --generate ================================
def settings_of(args, n_cond):
    return {"arch": args.arch, "z_dim": args.z_dim, "batchnorm": args.batchnorm,
            "n_classes": n_cond}


def build_generator(s):  # the generator that settings_of describes
    return Generator_model(s["z_dim"], s["n_classes"]) if s["arch"] == "cookbook" else \
        Generator(s["z_dim"], s["batchnorm"], s["n_classes"])


def write_extras(args, out, image_list, images, n_cond, sampler):
    """progress.gif and real vs fake (as the PyTorch DCGAN tutorial shows them), then
    generator.pt2 and generator_weights.pt with the sampler's weights."""
    frames = [Image.fromarray((g.permute(1, 2, 0).numpy() * 255).astype(np.uint8))
              for g in image_list]
    frames[0].save(os.path.join(out, "progress.gif"), save_all=True,
                   append_images=frames[1:], duration=500, loop=0)
    real = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:64]]
    plt.figure(figsize=(15, 7.5))
    for k, (title, grid) in enumerate((("Real Images", vutils.make_grid(
            real, padding=2, normalize=True)), ("Fake Images", image_list[-1]))):
        plt.subplot(1, 2, k + 1)
        plt.axis("off")
        plt.title(title)
        plt.imshow(grid.permute(1, 2, 0).numpy())
    plt.savefig(os.path.join(out, "real_vs_fake.png"), bbox_inches="tight")
    export = build_generator(settings_of(args, n_cond))
    export.load_state_dict(sampler.state_dict())
    example = (torch.randn(2, args.z_dim),) + ((torch.tensor([0, 1]),) if n_cond else ())
    save_generator(export, example, out, SCRIPT, settings_of(args, n_cond))
    print(f"wrote generator.pt2, generator_weights.pt, checkpoint.pt, metrics.csv, losses.png, "
          f"fake_iter_*.png, fake_samples.png, progress.gif, real_vs_fake.png to {out}")


def generate(args):
    """Samples from a run's generator_weights.pt (or checkpoint.pt): nothing is trained."""
    saved = load_checkpoint(args.generate, SCRIPT)
    try:
        settings = saved["settings"]
        z_dim, n_classes = settings["z_dim"], settings["n_classes"]
        if not (settings["arch"] in ARCH_Z_DIM and type(settings["batchnorm"]) is bool and
                type(z_dim) is int and 1 <= z_dim <= 1024 and
                type(n_classes) is int and 0 <= n_classes <= 1000):
            raise ValueError(settings)  # no absurd sizes from a tampered file
        generator = build_generator(settings)
        if "state_dict" in saved:  # generator_weights.pt: the sampling copy's weights
            generator.load_state_dict(saved["state_dict"])
        else:  # checkpoint.pt: G's average (or G), with batch norm for those weights
            ema = {k[7:]: v for k, v in (saved["ema"] or {}).items() if k[:7] == "module."}
            generator.load_state_dict(ema or saved["generator"])
            generator = sampling_copy(generator, generator, z_dim, n_classes)
    except Exception:
        fail(f"{args.generate} does not hold a generator dcgan_mnist.py can rebuild; pass the "
             f"generator_weights.pt of a run")
    if args.label is not None and not args.label < n_classes:
        fail(f"--label needs a conditional generator with that class; {args.generate} has "
             f"{n_classes or 'no'} classes")
    out_lock = prepare_out(args.out, new_run=False)  # noqa: F841 (held until we return)
    torch.manual_seed(args.seed)
    noise, labels = torch.randn(args.num_samples, z_dim), None
    if n_classes:  # without --label: every class in turn, one class per column
        labels = torch.full((args.num_samples,), args.label) if args.label is not None \
            else torch.arange(args.num_samples) % n_classes
    path = os.path.join(args.out, "generated.png")
    vutils.save_image(draw(generator.eval(), noise, labels), path, normalize=True,
                      nrow=n_classes if n_classes and args.label is None else 8,
                      value_range=(-1, 1))
    print(f"wrote {args.num_samples} samples to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
