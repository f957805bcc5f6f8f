"""DCGAN faces on CelebA: the PyTorch "DCGAN Tutorial" (N. Inkawhich), as one runnable script.

The tutorial (https://pytorch.org/tutorials/beginner/dcgan_faces_tutorial.html) comes first, in
its order and under its names; each addition is one call from its flow, defined in an appendix
after it (among them the advanced topics of "Comprehensive Introduction to Turing Learning and
GANs, Part 2"). Copy this file together with common.py.

    python dcgan_celeba.py --dataroot data/celeba --epochs 5      # the improved defaults
    python dcgan_celeba.py --dataroot data/celeba --tutorial      # the tutorial's settings
    python dcgan_celeba.py --resume outputs/dcgan_celeba/checkpoint.pt --epochs 10
    torchrun --standalone --nproc_per_node=8 dcgan_celeba.py --dataroot data/celeba

OUT/generator.pt2 is for other projects: torch.export.load(path).module() maps noise (N, nz, 1,
1) to images (N, nc, S, S) in [-1, 1]; it runs code from the file: load only files you trust.
"""
import argparse
import contextlib
import copy
import csv
import datetime
import itertools
import math
import os
import random
import sys
import time

import matplotlib.animation as animation
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.optim as optim
import torch.utils.data
import torchvision.datasets as dset
import torchvision.transforms as transforms
import torchvision.utils as vutils
from PIL import Image
from torch.optim.swa_utils import AveragedModel, update_bn

from common import (ArgumentParser, atomic_save, command_line, fail, ignore_signals, int_range,
                    load_checkpoint, parse, pick_device, positive_float, positive_int,
                    prepare_out, run, save_generator, seed_int, stop_on_ctrl_c, unit_interval)

SCRIPT = "dcgan_celeba"
# --tutorial: the tutorial's values, and none of the additions that change results or speed
TUTORIAL = dict(batch_size=128, lr=0.0002, lr_d=None, beta1=0.5, ema=0.0, amp="off",
                decode_once=False, channels_last=False)
MAY_CHANGE = {"epochs", "time_budget", "log_every", "sample_every", "checkpoint_every", "device",
              "workers", "fid", "fid_weights", "decode_once"}  # with --resume


# -- Inputs ------------------------------------------------------------------------------------
def parse_args(argv=None):
    """The tutorial's inputs as flags, its comments as help; more_flags() adds the rest."""
    p = ArgumentParser(prog="dcgan_celeba.py", description="The PyTorch DCGAN tutorial on CelebA "
                       "faces (or any folder of images), plus advanced topics; resumable.")
    add = p.add_argument_group("the tutorial's inputs").add_argument
    add("--tutorial", action="store_true", help="the tutorial's settings: --batch-size 128 "
        "--lr 0.0002 --beta1 0.5 --ema 0 --amp off --no-decode-once --no-channels-last. Still "
        "different: D's logits go to BCEWithLogitsLoss (the same loss), samples come from G's "
        "sampling copy")
    add("--dataroot", default="data/celeba", help="Root directory for dataset")
    add("--workers", type=int_range(0, 64), default=2, help="Number of workers for dataloader")
    add("--batch-size", type=int_range(2, 4096), default=64, help="Batch size during training "
        "(the tutorial's: 128; under torchrun: the total)")
    add("--image-size", type=int, choices=[32, 64, 128, 256], default=64,
        help="Spatial size of training images")
    add("--nc", type=int, choices=[1, 3], default=3,
        help="Number of channels in the training images. For color images this is 3")
    add("--nz", type=int_range(1, 1024), default=100, help="Size of z latent vector")
    add("--ngf", type=int_range(1, 128), default=64, help="Size of feature maps in generator")
    add("--ndf", type=int_range(1, 128), default=64, help="Size of feature maps in discriminator")
    add("--epochs", type=int_range(1, 100000), default=5, help="Number of training epochs")
    add("--lr", type=positive_float, default=0.0002,
        help="Learning rate for optimizers (G's, and D's unless --lr-d)")
    add("--beta1", type=unit_interval, default=0.5, help="Beta1 hyperparam for Adam optimizers")
    add("--seed", type=seed_int, default=999, help="manualSeed")
    more_flags(p)  # appendix A
    first = p.parse_args(argv)  # the Keras model and the Wasserstein losses imply settings
    p.set_defaults(**{**IMPLIED.get(first.arch, {}), **IMPLIED.get(first.loss, {})})
    args, checkpoint = parse(p, argv, TUTORIAL, SCRIPT, MAY_CHANGE)
    args.checkpoint, args.command = checkpoint, command_line(p, args, check_args(args))
    args.saved = {a.dest: getattr(args, a.dest) for a in p._actions if a.dest != "help"}
    return args


# -- Data --------------------------------------------------------------------------------------
def load_data(args, ctrl_c):
    """The tutorial's seed, dataset, dataloader, device and plot of training images."""
    # Set random seed for reproducibility
    manualSeed = args.seed
    print("Random Seed: ", manualSeed)
    random.seed(manualSeed)
    torch.manual_seed(manualSeed)
    dataroot, workers, image_size, nc = args.dataroot, args.workers, args.image_size, args.nc

    # We can use an image folder dataset the way we have it setup.
    # Create the dataset (Addition: ImageFolder, below, also reads flat folders, bad files)
    dataset = ImageFolder(root=dataroot,
                          transform=transforms.Compose([
                              transforms.Resize(image_size),
                              transforms.CenterCrop(image_size),
                              transforms.ToTensor(),
                              transforms.Normalize((0.5,) * nc, (0.5,) * nc),
                          ] + [transforms.Grayscale()] * (nc == 1)))
    if args.decode_once:  # Addition: every image decoded once, kept in memory as uint8
        dataset = decode_once(dataset, args, ctrl_c)
    # Create the dataloader (Addition: DistributedSampler for shuffle=True: each process's
    # share of a seeded order per epoch, the same after --resume; and its own generator)
    sampler = torch.utils.data.DistributedSampler(dataset, args.world, args.rank, seed=manualSeed,
                                                  drop_last=args.world > 1)
    share = args.batch_size // args.world
    dataloader = torch.utils.data.DataLoader(dataset, batch_size=share, sampler=sampler,
                                             num_workers=0 if args.decode_once else workers,
                                             drop_last=len(sampler) % share == 1,
                                             worker_init_fn=ignore_signals,
                                             generator=torch.Generator().manual_seed(manualSeed))
    if len(dataloader) == 0:
        fail(f"{len(dataset)} images are fewer than one --batch-size {args.batch_size}")
    print(f"dataset: {len(dataset)} images, {len(dataloader)} batches of {share} per epoch")

    # Decide which device we want to run on (Addition: --device, or torchrun's local GPU)
    device = args.device

    # Plot some training images
    real_batch = next(iter(dataloader))
    if not real_batch[1].any():  # Addition: none of them is readable
        fail(f"none of the first {len(real_batch[1])} image files in {dataroot} can be read")
    real_batch = [to_model_range(real_batch[0][real_batch[1]])]
    plt.figure(figsize=(8, 8))
    plt.axis("off")
    plt.title("Training Images")
    plt.imshow(np.transpose(vutils.make_grid(real_batch[0].to(device)[:64], padding=2,
                                             normalize=True).cpu().numpy(), (1, 2, 0)))
    if args.rank == 0:
        plt.savefig(os.path.join(args.out, "training_images.png"), dpi=80, bbox_inches="tight")
    return dataloader, device, real_batch


# -- Implementation: Weight Initialization -----------------------------------------------------
# custom weights initialization called on netG and netD
def weights_init(m):
    classname = m.__class__.__name__
    if classname.find('Conv') != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find('BatchNorm') != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


# -- Generator (Addition: sizes 32-256: the middle blocks repeat log2(image_size) - 3 times,
# so at 64 the layers and the printed model are exactly the tutorial's) ------------------------
class Generator(nn.Module):
    def __init__(self, ngpu, nz=100, ngf=64, nc=3, image_size=64):
        super(Generator, self).__init__()
        self.ngpu = ngpu
        mult = image_size // 8  # 8 at 64x64
        layers = [
            # input is Z, going into a convolution
            nn.ConvTranspose2d(nz, ngf * mult, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * mult),
            nn.ReLU(True),
            # state size. (ngf*8) x 4 x 4
        ]
        while mult > 1:
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ngf * mult // 2),
                nn.ReLU(True),
            ]
            mult //= 2
            # state size. (ngf*4) x 8 x 8, then (ngf*2) x 16 x 16, then (ngf) x 32 x 32
        layers += [
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh()
            # state size. (nc) x 64 x 64
        ]
        self.main = nn.Sequential(*layers)

    def forward(self, input):
        return self.main(input)


# -- Discriminator (Addition: sizes 32-256 as G; `norm`: layer norm for WGAN-GP) ---------------
class Discriminator(nn.Module):
    def __init__(self, ngpu, nc=3, ndf=64, image_size=64, norm=nn.BatchNorm2d):
        super(Discriminator, self).__init__()
        self.ngpu = ngpu
        layers = [
            # input is (nc) x 64 x 64
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf) x 32 x 32
        ]
        mult, size = 1, image_size // 2
        while size > 4:
            layers += [
                nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 2, 1, bias=False),
                norm(ndf * mult * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            mult, size = mult * 2, size // 2
            # state size. (ndf*2) x 16 x 16, then (ndf*4) x 8 x 8, then (ndf*8) x 4 x 4
        layers += [
            nn.Conv2d(ndf * mult, 1, 4, 1, 0, bias=False),
            # Addition: no nn.Sigmoid(): D returns logits (see criterion)
        ]
        self.main = nn.Sequential(*layers)

    def forward(self, input):
        return self.main(input)


# -- Training: the networks, Loss Functions and Optimizers, the Training loop ------------------
def train(args, ctrl_c):
    """The tutorial's flow from its data to its results. Exit status 0, or 130 after Ctrl-C."""
    dataloader, device, real_batch = load_data(args, ctrl_c)
    ngpu, nz, ngf, ndf, nc = args.world, args.nz, args.ngf, args.ndf, args.nc
    num_epochs, lr, beta1 = args.epochs, args.lr, args.beta1

    # Create the generator
    netG = Generator(ngpu, nz, ngf, nc, args.image_size).to(device)
    # Handle multi-gpu if desired: see speed_up() (torchrun's DistributedDataParallel)
    # Apply the weights_init function to randomly initialize all weights
    #  to mean=0, stdev=0.02.
    netG.apply(weights_init)
    if args.arch == "encoder-decoder":  # Addition: the article's Keras model
        netG = build_generator(nz, nc, args.net_capacity, args.filter_size).to(device)
    # Print the model
    print(netG)

    # Create the Discriminator
    netD = Discriminator(ngpu, nc, ndf, args.image_size, LOSSES[args.loss][3]).to(device)
    # Apply the weights_init function to randomly initialize all weights
    #  to mean=0, stdev=0.2.
    netD.apply(weights_init)
    if args.arch == "encoder-decoder":  # Addition: the article's Keras model
        netD = build_discriminator(nc, args.net_capacity, args.filter_size, LOSSES[args.loss][3])
    # Print the model
    print(netD)

    # Initialize BCELoss function (Addition: on D's logits; --loss: the article's others)
    criterion, criterionG, prob, _ = LOSSES[args.loss]
    # Create batch of latent vectors that we will use to visualize
    #  the progression of the generator
    fixed_noise = torch.randn(64, nz, 1, 1, device=device)
    # Establish convention for real and fake labels during training
    real_label = 1.
    fake_label = 0.
    # Setup Adam optimizers for both G and D (Addition: --lr-d, --beta2)
    optimizerD = optim.Adam(netD.parameters(), lr=args.lr_d or lr, betas=(beta1, args.beta2))
    optimizerG = optim.Adam(netG.parameters(), lr=lr, betas=(beta1, args.beta2))

    # Training Loop

    # Lists to keep track of progress
    img_list = []
    G_losses = []
    D_losses = []
    iters = 0

    # Additions, each set up once here and at most a line in the loop (appendices below)
    modelG, modelD = netG.to(device), netD.to(device)  # the plain networks: files, samples
    netG, netD, ctx, scaler = speed_up(netG, netD, args)  # channels-last, DDP, compile, --amp
    ema = args.ema and average(modelG, optimizerG, args)  # --ema: G's average after G's steps
    criterion, penalty = loss_setup(args, criterion, netD, modelD, optimizerD, scaler)
    parts = dict(netG=modelG, netD=modelD, optimizerG=optimizerG, optimizerD=optimizerD,
                 scaler=scaler, **({"ema": ema} if ema else {}))
    checkpoint, (iters, start_epoch, start_batch) = checkpoints(  # and --resume
        args, parts, img_list, G_losses, D_losses)
    batches = batch_stream(dataloader, args, ctrl_c)  # on the device, in [-1, 1], resumable
    report = reporter(args, len(dataloader), D_losses, ema or modelG, modelD)  # csv, signs
    errG = D_G_z2 = torch.zeros((), device=device)  # until G's first step (--d-updates)
    stop = None

    print("Starting Training Loop...")
    # For each epoch
    for epoch in range(start_epoch, num_epochs):
        # For each batch in the dataloader (Addition: and whether to stop after it)
        for i, data, stop in batches(epoch, start_batch if epoch == start_epoch else 0):
            with ctx:
                ############################
                # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
                ###########################
                ## Train with all-real batch
                netD.zero_grad()
                # Format batch
                real_cpu = data[0].to(device)
                b_size = real_cpu.size(0)
                label = torch.full((b_size,), real_label, device=device)
                # Forward pass real batch through D
                output = netD(real_cpu).view(-1)
                # Calculate loss on all-real batch
                errD_real = criterion(output, label)
                # Calculate gradients for D in backward pass
                scaler.scale(errD_real).backward()
                D_x = prob(output.detach()).mean()

                ## Train with all-fake batch
                # Generate batch of latent vectors
                noise = torch.randn(b_size, nz, 1, 1, device=device)
                # Generate fake image batch with G
                fake = netG(noise)
                label.fill_(fake_label)
                # Classify all fake batch with D
                output = netD(fake.detach()).view(-1)
                # Calculate D's loss on the all-fake batch
                errD_fake = criterion(output, label)
                # Calculate the gradients for this batch, accumulated (summed) with previous
                # gradients
                scaler.scale(errD_fake).backward()
                D_G_z1 = prob(output.detach()).mean()
                # Compute error of D as sum over the fake and the real batches
                errD = errD_real + errD_fake + penalty(real_cpu, fake.detach())  # WGAN-GP
                # Update D
                scaler.step(optimizerD)
                scaler.update()

                ############################
                # (2) Update G network: maximize log(D(G(z)))
                ###########################
                for g_step in range(args.g_updates * ((i + 1) % args.d_updates == 0)):
                    fake = netG(torch.randn(b_size, nz, 1, 1, device=device)) if g_step else fake
                    netG.zero_grad()
                    label.fill_(real_label)  # fake labels are real for generator cost
                    # Since we just updated D, perform another forward pass of all-fake batch
                    # through D
                    output = netD(fake).view(-1)
                    # Calculate G's loss based on this output
                    errG = criterionG(output, label)
                    # Calculate gradients for G
                    scaler.scale(errG).backward()
                    D_G_z2 = prob(output.detach()).mean()
                    # Update G
                    scaler.step(optimizerG)
                    scaler.update()

            # Output training stats (Addition: every --log-every, with images/s and ETA)
            if i % args.log_every == 0 or i == len(dataloader) - 1 or stop:
                print('[%d/%d][%d/%d]\tLoss_D: %.4f\tLoss_G: %.4f\tD(x): %.4f\tD(G(z)): %.4f / %.4f'
                      % (epoch, num_epochs, i, len(dataloader),
                         errD.item(), errG.item(), D_x, D_G_z1, D_G_z2)
                      + report(epoch, iters, errD, errG, D_x, D_G_z1, D_G_z2, fake, real_cpu))

            # Save Losses for plotting later (Addition: as tensors: no GPU sync per step)
            G_losses.append(errG.detach())
            D_losses.append(errD.detach())

            # Check how the generator is doing by saving G's output on fixed_noise
            if args.rank == 0 and ((iters % args.sample_every == 0) or (
                    (epoch == num_epochs-1) and (i == len(dataloader)-1)) or stop):
                with torch.no_grad():
                    fake = sampling_copy(ema or modelG, args)(fixed_noise).detach().cpu()
                img_list.append(vutils.make_grid(fake, padding=2, normalize=True))

            iters += 1
            checkpoint(epoch, i + 1, iters, stop)  # on a stop, and every --checkpoint-every
            if stop:
                break
        if stop:
            break
        checkpoint(epoch + 1, 0, iters, "end of epoch")
    return results(args, img_list, G_losses, D_losses, real_batch, ema or modelG, fixed_noise,
                   iters, stop, dataloader.dataset)


# -- Results -----------------------------------------------------------------------------------
def results(args, img_list, G_losses, D_losses, real_batch, modelG, fixed_noise, iters, stop,
            dataset):
    """The tutorial's three results, as files; additions: the generator, FID."""
    if stop == "interrupted" or args.rank:  # Ctrl-C or SIGTERM: the checkpoint is saved
        return 130 if stop == "interrupted" else 0
    sampleG = sampling_copy(modelG, args)  # Addition: see sampling_copy
    G_losses, D_losses = [float(x) for x in G_losses], [float(x) for x in D_losses]
    # Loss versus training iteration
    plt.figure(figsize=(10, 5))
    plt.title("Generator and Discriminator Loss During Training")
    plt.plot(G_losses, label="G", marker="." if len(G_losses) < 50 else None)
    plt.plot(D_losses, label="D", marker="." if len(D_losses) < 50 else None)
    plt.xlabel("iterations")
    plt.ylabel("Loss")
    plt.legend()
    plt.savefig(os.path.join(args.out, "losses.png"), dpi=80)

    # Visualization of G's progression (the tutorial's HTML animation, as progress.gif)
    fig = plt.figure(figsize=(8, 8))
    plt.axis("off")
    ims = [[plt.imshow(np.transpose(i.numpy(), (1, 2, 0)), animated=True)] for i in img_list]
    ani = animation.ArtistAnimation(fig, ims, interval=1000, repeat_delay=1000, blit=True)
    ani.save(os.path.join(args.out, "progress.gif"), writer=animation.PillowWriter(fps=1), dpi=64)

    # Real Images vs. Fake Images
    # Plot the real images
    plt.figure(figsize=(15, 15))
    plt.subplot(1, 2, 1)
    plt.axis("off")
    plt.title("Real Images")
    plt.imshow(np.transpose(vutils.make_grid(real_batch[0][:64], padding=5,
                                             normalize=True).cpu().numpy(), (1, 2, 0)))
    # Plot the fake images from the last epoch
    plt.subplot(1, 2, 2)
    plt.axis("off")
    plt.title("Fake Images")
    plt.imshow(np.transpose(img_list[-1].numpy(), (1, 2, 0)))
    plt.savefig(os.path.join(args.out, "real_vs_fake.png"), dpi=60, bbox_inches="tight")
    if args.show:
        plt.show()
    plt.close("all")

    # Addition: the generator, for --generate and for other projects; FID
    save_generator(sampleG.to(memory_format=torch.contiguous_format), (fixed_noise[:2],),
                   args.out, SCRIPT, {k: args.saved[k] for k in GENERATOR_SETTINGS})
    print(f"{stop or 'done'} after {iters} iterations; the figures and files are in {args.out}")
    if iters * args.batch_size < 200000:
        print(f"note: the tutorial's 5 epochs show D ~1M CelebA images and faces appear after "
              f"~200k: expect noise or blobs from this run's {iters * args.batch_size:,} images")
    if args.fid:
        fid_report(sampleG, dataset, args, args.epochs - 1, iters)
    return 0


# == Appendices: what the script adds to the tutorial, each set up by one call above ==========
# -- A. Flags beyond the tutorial's inputs ------------------------------------------------------
IMPLIED = {"encoder-decoder": dict(batch_size=32, beta1=0.9),
           "wgan": dict(lr=0.00005, beta1=0.0, beta2=0.9, d_updates=5),
           "wgan-gp": dict(lr=0.0001, beta1=0.0, beta2=0.9, d_updates=5)}  # as published
GENERATOR_SETTINGS = ("arch", "nz", "ngf", "nc", "image_size", "net_capacity", "filter_size")


def more_flags(p):
    on_off = argparse.BooleanOptionalAction
    add = p.add_argument_group("data and speed").add_argument
    add("--decode-once", action=on_off, default=True, help="decode each image once, to memory")
    add("--amp", choices=["auto", "off", "bf16", "fp16"], default="auto", help="auto: bf16 if fast")
    add("--channels-last", action=on_off, default=True, help="NHWC memory format")
    add("--compile", action="store_true", help="torch.compile G and D")
    add = p.add_argument_group("advanced topics (Turing Learning and GANs, Part 2)").add_argument
    add("--arch", choices=["dcgan", "encoder-decoder"], default="dcgan", help="the tutorial's "
        "networks, or the article's Keras model (64 px; --batch-size 32 --beta1 0.9)")
    add("--net-capacity", type=int_range(1, 256), default=16, help="encoder-decoder: filters")
    add("--filter-size", type=int, choices=range(1, 16, 2), default=5, metavar="{1,3,..,15}")
    add("--loss", choices=["bce", "hinge", "wgan", "wgan-gp"], default="bce", help="bce: the "
        "tutorial's; wgan and wgan-gp come with their papers' --lr, --beta1, --beta2, --d-updates")
    add("--clip-value", type=positive_float, default=0.01, help="wgan: D's weights in [-c, c]")
    add("--beta2", type=unit_interval, default=0.999, help="Adam beta2")
    add("--lr-d", type=positive_float, help="D's learning rate (default: --lr)")
    add("--d-updates", type=int_range(1, 100), default=1, help="D steps per G step")
    add("--g-updates", type=int_range(1, 100), default=1, help="G steps per D step")
    add("--label-smoothing", type=unit_interval, default=0.0, help="D's real target: 1 - this")
    add("--ema", type=unit_interval, default=0.999, help="samples from G's moving average")
    add = p.add_argument_group("evaluation").add_argument
    add("--fid", type=int_range(0, 100000), default=0, metavar="N", help="FID, IS of N samples")
    add("--fid-weights", metavar="PATH", help="torch-fidelity's Inception weights file")
    add("--generate", metavar="PATH", help="no training: samples of a generator_weights.pt")
    add("--num-samples", type=int_range(1, 1024), default=64, help="images for --generate")
    add = p.add_argument_group("run control").add_argument
    add("--out", default=f"outputs/{SCRIPT}", help="folder for everything written")
    add("--overwrite", action="store_true", help="replace an earlier run in --out")
    add("--resume", metavar="PATH", help="continue the run of this checkpoint.pt")
    add("--time-budget", type=positive_float, metavar="SECONDS", help="stop after this long")
    add("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto", help="auto: cuda, mps")
    add("--log-every", type=positive_int, default=50, help="stats line every N iterations")
    add("--sample-every", type=positive_int, default=500, help="img_list grid every N iterations")
    add("--checkpoint-every", type=int_range(0, 2**31), default=0, help="checkpoint every N too")
    add("--dry-run", action="store_true", help="one iteration, then every file")
    add("--show", action="store_true", help="also show the figures in windows")


def check_args(args):
    """Refuses what no flag's type can; returns the flags idle in this run (not echoed)."""
    keras, loss = args.arch == "encoder-decoder", args.loss
    if keras and args.image_size != 64:
        fail("--arch encoder-decoder is the article's 64x64 model: use --image-size 64")
    if args.label_smoothing and loss != "bce":
        fail("--label-smoothing goes with --loss bce")
    idle = dict(net_capacity=not keras, filter_size=not keras, ngf=keras, ndf=keras,
                clip_value=loss != "wgan", label_smoothing=not args.label_smoothing,
                fid=not args.fid, ema=not args.ema, checkpoint_every=not args.checkpoint_every,
                num_samples=not args.generate)
    return [k for k, v in idle.items() if v]


# -- B. Run control: torchrun, checkpoints and resume, stops, progress, metrics.csv -------------
def main(argv=None):
    args = parse_args(argv)
    if args.generate:
        return generate(args)
    world, rank = os.environ.get("WORLD_SIZE", "1"), os.environ.get("RANK", "0")
    if not (world.isdigit() and rank.isdigit() and int(world) > 0 and (
            world == "1" or "MASTER_ADDR" in os.environ and "RANK" in os.environ)):
        fail("WORLD_SIZE, RANK and MASTER_ADDR are torchrun's: start several processes with "
             "torchrun --standalone --nproc_per_node=N dcgan_celeba.py ...")
    args.world, args.rank, args.ddp = int(world), int(rank), "LOCAL_RANK" in os.environ
    args.started = time.monotonic()  # --time-budget counts from here: decoding included
    if args.batch_size % args.world or args.batch_size // args.world < 2:
        fail(f"--batch-size {args.batch_size}: split over {args.world} processes, at least 2 each")
    cuda = args.ddp and args.device in ("auto", "cuda") and torch.cuda.is_available()
    args.device = torch.device("cuda", int(os.environ["LOCAL_RANK"])) if cuda else \
        pick_device("cpu" if args.ddp and args.device == "auto" else args.device)
    if args.amp == "fp16" and args.device.type != "cuda":
        fail("--amp fp16 needs a CUDA GPU (its GradScaler); use --amp bf16 on this device")
    if args.fid:  # its package now, not after training; its weights (unpickled): tensors?
        try:
            __import__("torch_fidelity")
            args.fid_weights and torch.load(args.fid_weights, weights_only=True)
        except Exception as e:
            fail(f"--fid needs torch-fidelity (pip install -r requirements-fid.txt), and "
                 f"--fid-weights its Inception weights file ({type(e).__name__})")
    if args.rank == 0:
        print("arguments: " + args.command)
    out_lock = prepare_out(args.out, not args.resume, args.overwrite) if args.rank == 0 else None
    if not args.show:
        plt.switch_backend("Agg")
    if args.ddp:  # torchrun: a process per GPU (or per CPU worker), in a process group
        if cuda:
            torch.cuda.set_device(args.device)
        dist.init_process_group("nccl" if cuda else "gloo")
        if args.rank:
            sys.stdout = open(os.devnull, "w")  # rank 0 prints; every rank's errors show
    print(f"device: {args.device}" + f" x {args.world} processes (torchrun)" * args.ddp)
    try:
        with stop_on_ctrl_c() as ctrl_c:
            return train(args, ctrl_c)
    finally:
        if args.ddp:
            dist.destroy_process_group()
        del out_lock


def checkpoints(args, parts, img_list, G_losses, D_losses):
    """checkpoint(epoch, batch, iters, why) writes OUT/checkpoint.pt atomically; with --resume,
    the checkpoint is restored first. Returns it and where to go on: (iters, epoch, batch)."""
    def checkpoint(epoch, batch, iters, why):
        if not why and not (args.checkpoint_every and iters % args.checkpoint_every == 0):
            return
        rng = [(torch.get_rng_state(), torch.cuda.get_rng_state(args.device)
                if args.device.type == "cuda" else None)] * args.world  # each process's
        if args.ddp:
            dist.all_gather_object(rng, rng[0])
        if args.rank == 0:
            atomic_save({"script": SCRIPT, **{k: v.state_dict() for k, v in parts.items()},
                         "args": dict(args.saved, dataroot=os.path.abspath(args.dataroot)),
                         "world": args.world, "rng": rng, "epoch": epoch, "batch": batch,
                         "iters": iters, "G_losses": [float(x) for x in G_losses],
                         "D_losses": [float(x) for x in D_losses],
                         "img_list": [(g * 255).round().byte() for g in img_list]},
                        os.path.join(args.out, "checkpoint.pt"))
            if why == "interrupted":  # Ctrl-C or SIGTERM
                print("stopped; checkpoint saved. Continue with: " + ("python" if args.world == 1
                      else f"torchrun --nproc_per_node={args.world}") + f" {sys.argv[0]} --resume "
                      f"{args.out}/checkpoint.pt", file=sys.stderr)
    ckpt, path = args.checkpoint, args.resume
    if not ckpt:
        return checkpoint, (0, 0, 0)
    if ckpt.get("world", 1) != args.world:
        fail(f"{path} was trained by {ckpt.get('world', 1)} process(es), this is {args.world}: "
             f"resume it with as many (torchrun --nproc_per_node={ckpt.get('world', 1)})")
    try:
        for name, part in parts.items():
            part.load_state_dict(ckpt[name])
        cpu_rng, cuda_rng = ckpt["rng"][args.rank]
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None and args.device.type == "cuda":
            torch.cuda.set_rng_state(cuda_rng, args.device)
        img_list += [g.float() / 255 for g in ckpt["img_list"]]
        G_losses += ckpt["G_losses"]
        D_losses += ckpt["D_losses"]
    except (RuntimeError, ValueError, KeyError, IndexError, TypeError) as e:
        fail(f"{path} does not fit these networks ({str(e).splitlines()[0][:120]})")
    print(f"resumed {path}: epoch {ckpt['epoch']}, batch {ckpt['batch']}, iter {ckpt['iters']}")
    return checkpoint, (ckpt["iters"], ckpt["epoch"], ckpt["batch"])


def reporter(args, batches, D_losses, modelG, modelD):
    """report(...): a metrics.csv row, failure signs, the line's images/s and ETA."""
    metrics = open(os.path.join(args.out, "metrics.csv") if args.rank == 0 else os.devnull,
                   "a" if args.resume else "w", newline="", buffering=1)
    writer, last, warned = csv.DictWriter(metrics, METRICS), [time.perf_counter(), None], set()
    if not args.resume:
        writer.writeheader()

    def report(epoch, iters, errD, errG, D_x, D_G_z1, D_G_z2, fake, real):
        rate = (1 if last[1] is None else iters - last[1]) * args.batch_size / (
            time.perf_counter() - last[0])
        last[:] = time.perf_counter(), iters
        fake_std, real_std = (x.detach().float().std(0).mean().item() for x in (fake, real))
        row = dict(loss_d=errD, loss_g=errG, d_x=D_x, d_g_z1=D_G_z1, d_g_z2=D_G_z2,
                   fake_std=fake_std, images_per_sec=rate)
        writer.writerow(dict(epoch=epoch, iteration=iters, **{
            k: round(float(v.detach() if torch.is_tensor(v) else v), 5) for k, v in row.items()}))
        for warning in failure_signs(args, D_losses, fake_std, real_std, warned):
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        if args.arch == "encoder-decoder" and args.rank == 0:  # the article's figure
            save_progress_figure(modelG, modelD, args, iters)
        eta = max(args.epochs * batches - iters - 1, 0) * args.batch_size / rate
        return f"\t{rate:.1f} img/s\tETA {datetime.timedelta(seconds=round(eta))}"
    return report


METRICS = ["epoch", "iteration", "loss_d", "loss_g", "d_x", "d_g_z1", "d_g_z2", "fake_std",
           "images_per_sec", "fid", "inception_score"]


# -- C. The fast data path: decode once, batches on the device, resumable -----------------------
class ImageFolder(dset.ImageFolder):
    """dset.ImageFolder of (image, readable), that also reads a flat folder of images."""

    def __init__(self, root, transform):
        if os.path.isdir(root):
            super().__init__(root, transform, allow_empty=True)
        if not getattr(self, "samples", None):
            fail(f"no images in --dataroot {root}: expected {root}/img_align_celeba/*.jpg (unzip "
                 f"img_align_celeba.zip there first), or a folder of images")

    def find_classes(self, directory):
        classes = sorted(e.name for e in os.scandir(directory)
                         if e.is_dir() and not e.name.startswith("."))
        if not any(f.lower().endswith(dset.folder.IMG_EXTENSIONS) for c in classes
                   for _, _, files in os.walk(os.path.join(directory, c)) for f in files):
            classes = ["."]  # a flat folder of images: one class, the folder itself
        return classes, {c: i for i, c in enumerate(classes)}

    def __getitem__(self, index):
        try:
            return super().__getitem__(index)[0], True
        except Exception:  # truncated, corrupt, or not an image at all
            return self.transform(Image.new("RGB", (8, 8))), False


def decode_once(dataset, args, ctrl_c):
    """Every image through Resize and CenterCrop once, into memory as uint8 (CelebA at 64 px:
    2.5 GB), unless that takes over half the free memory; unreadable files are skipped."""
    n, S, nc = len(dataset), args.image_size, args.nc
    free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") if os.name == "posix" else 8e9
    if n * nc * S * S > free // 2:
        print(f"decode-once: off ({n * nc * S * S / 1e9:.1f} GB, {free / 1e9:.1f} GB free)")
        return dataset
    decoded = copy.copy(dataset)
    decoded.transform = transforms.Compose([transforms.Resize(S), transforms.CenterCrop(S),
                                            transforms.PILToTensor()]
                                           + [transforms.Grayscale()] * (nc == 1))
    loader = torch.utils.data.DataLoader(decoded, batch_size=256, num_workers=args.workers,
                                         worker_init_fn=ignore_signals, generator=torch.Generator())
    images, t0 = [], time.perf_counter()
    for k, (x, ok) in enumerate(loader):
        if ctrl_c.requested:
            print("stopped while decoding the images; nothing was trained", file=sys.stderr)
            raise KeyboardInterrupt
        images.append(x[ok])
        if (k + 1) % 40 == 0 or k == len(loader) - 1:
            done, spent = min(n, (k + 1) * 256), time.perf_counter() - t0
            eta = datetime.timedelta(seconds=round((n - done) / done * spent))
            print(f"decoding the images once: {done}/{n}, ETA {eta}", flush=True)
    images = torch.cat(images)
    if len(images) == 0:
        fail(f"none of the {n} image files in {args.dataroot} can be read")
    if len(images) < n and args.rank == 0:
        print(f"warning: skipped {n - len(images)} unreadable image file(s)", file=sys.stderr)
    return torch.utils.data.TensorDataset(images, torch.ones(len(images), dtype=torch.bool))


def to_model_range(images):
    """uint8 images as ToTensor() and Normalize(0.5, 0.5) give them: u / 127.5 - 1."""
    return images.float().div_(127.5).sub_(1.0) if images.dtype == torch.uint8 else images


def batch_stream(dataloader, args, ctrl_c):
    """batches(epoch, start): (i, [images on the device], why to stop after it, or None)."""
    deadline = args.started + (args.time_budget or math.inf)
    stops = ("interrupted", "--time-budget spent", "dry run")

    def batches(epoch, start):
        dataloader.sampler.set_epoch(epoch)
        skipped = 0
        for i, (x, ok) in itertools.islice(enumerate(dataloader), start, None):
            skipped += int((~ok).sum())
            x = to_model_range(x[ok].to(args.device, non_blocking=True))
            x = x.contiguous(memory_format=torch.channels_last) if args.channels_last else x
            flags = torch.tensor([ctrl_c.requested, time.monotonic() > deadline, args.dry_run])
            if args.ddp:
                flags = flags.float().to(args.device) * (i % args.log_every == 0)
                dist.all_reduce(flags, op=dist.ReduceOp.MAX)
            why = [w for w, on in zip(stops, flags.tolist()) if on] + [None]
            if len(x) >= 2:  # batch norm needs two
                yield i, [x], why[0]
        if skipped and args.rank == 0 and epoch == 0:  # the first epoch's count
            print(f"warning: skipped {skipped} unreadable image file(s)", file=sys.stderr)
    return batches


# -- D. Speed: channels-last, DDP, torch.compile, mixed precision ------------------------------
def speed_up(netG, netD, args):
    """The networks the loop runs (channels-last, torchrun's DDP, torch.compile), the autocast
    context of --amp (auto: bf16 where it is fast) and a GradScaler (active under fp16 only)."""
    if args.channels_last:
        netG, netD = (m.to(memory_format=torch.channels_last) for m in (netG, netD))
    if args.ddp:
        ids = [args.device.index] if args.device.type == "cuda" else None
        netG, netD = (nn.parallel.DistributedDataParallel(m, device_ids=ids) for m in (netG, netD))
        torch.manual_seed(args.seed + args.rank)  # each process draws its own noise
    if args.compile:
        netG, netD = torch.compile(netG), torch.compile(netD)
    fast_bf16 = torch.cuda.is_bf16_supported() if args.device.type == "cuda" else \
        args.device.type == "cpu" and torch.cpu._is_avx512_bf16_supported()
    amp = ("bf16" if fast_bf16 else "off") if args.amp == "auto" else args.amp
    dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    ctx = torch.autocast(args.device.type, dtype=dtype) if dtype else contextlib.nullcontext()
    return netG, netD, ctx, torch.amp.GradScaler(args.device.type, enabled=amp == "fp16")


# -- E. Sampling: G's average, and an eval-mode copy with batch-norm statistics of its own -----
def average(modelG, optimizerG, args):
    """--ema: an AveragedModel of G, updated by a hook after each G step with the decay
    min(ema, (1 + t) / (10 + t)) at step t (a warm-up, as TensorFlow's); None for --ema 0."""
    ema = AveragedModel(modelG, use_buffers=False, multi_avg_fn=lambda avg, cur, t: [
        a.lerp_(c, 1 - torch.clamp((1 + t) / (10 + t), max=args.ema)) for a, c in zip(avg, cur)])
    optimizerG.register_step_post_hook(lambda *_: ema.update_parameters(modelG))
    return ema


def sampling_copy(modelG, args, passes=16):
    """An eval-mode copy of G, its batch-norm statistics recomputed from fresh noise: running
    ones lag behind the weights (grey images), and an exported G has no batch statistics."""
    g = copy.deepcopy(getattr(modelG, "module", modelG)).float()
    device = next(g.parameters()).device
    gen = torch.Generator(device).manual_seed(args.seed)
    update_bn([torch.randn(64, args.nz, 1, 1, device=device, generator=gen)  # torch's: reset,
               for _ in range(passes)], g)  # then a cumulative average over these batches
    return g.eval()


# -- F. Advanced topics (Turing Learning and GANs, Part 2): the Keras model, losses, signs -----
def build_discriminator(nc=3, f=16, filter_size=5, norm=nn.BatchNorm2d):
    """The article's build_discriminator(start_filters, spatial_dim, filter_size), D(x) logits."""
    layers, same = [], filter_size // 2
    for c_in, c in ((nc, f), (f, 2 * f), (2 * f, 4 * f), (4 * f, 8 * f)):  # 32, 16, 8, 4 px
        layers += [nn.Conv2d(c_in, c, filter_size, padding=same), norm(c),
                   nn.Conv2d(c, c, filter_size, stride=2, padding=same), norm(c), nn.LeakyReLU(0.3)]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8 * f, 1)).apply(keras_init)


def build_generator(latent_dim=100, nc=3, f=16, filter_size=5):
    """The article's build_generator(start_filters, filter_size, latent_dim)."""
    layers = []
    for c_in, c in ((8 * f, 4 * f), (4 * f, 2 * f), (2 * f, f), (f, f)):  # 8, 16, 32, 64 px
        layers += [nn.ConvTranspose2d(c_in, c, filter_size, stride=2, padding=filter_size // 2,
                                      output_padding=1), nn.BatchNorm2d(c), nn.LeakyReLU(0.3)]
    return nn.Sequential(nn.Flatten(), nn.Linear(latent_dim, 16 * 8 * f),
                         nn.BatchNorm1d(16 * 8 * f), nn.Unflatten(1, (8 * f, 4, 4)), *layers,
                         nn.Conv2d(f, nc, 5, padding=2), nn.Tanh()).apply(keras_init)


def keras_init(m):
    """Keras' default initialisation: glorot_uniform weights, zero biases."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.xavier_uniform_(m.weight)
        nn.init.zeros_(m.bias)


def wasserstein(output, label):
    """-E[D(x)] for real labels (1), E[D(G(z))] for fake ones (0): the critic's loss, and G's."""
    return -((2 * label - 1) * output.float()).mean()


# loss: criterion for D, for G (given real labels), D(x) as printed, and D's normalisation: a
# WGAN-GP critic normalises each sample alone, its penalty being per sample (Gulrajani et al.)
LOSSES = {"bce": (nn.BCEWithLogitsLoss(), nn.BCEWithLogitsLoss(),
                  lambda o: o.float().sigmoid(), nn.BatchNorm2d),
          "hinge": (lambda o, label: torch.relu(1 - (2 * label - 1) * o.float()).mean(),
                    wasserstein, torch.Tensor.float, nn.BatchNorm2d),
          "wgan": (wasserstein, wasserstein, torch.Tensor.float, nn.BatchNorm2d),
          "wgan-gp": (wasserstein, wasserstein, torch.Tensor.float, lambda c: nn.GroupNorm(1, c))}


def loss_setup(args, criterion, netD, modelD, optimizerD, scaler):
    """--label-smoothing: D's real targets 1 - x (its fake ones and G's stay). WGAN: D's weights
    clipped after each of its steps (a hook). Returns D's criterion and penalty(real, fake):
    WGAN-GP's gradient penalty (Gulrajani et al. 2017), backpropagated (0 for other losses)."""
    bce, smooth = criterion, 1 - args.label_smoothing
    criterion = (lambda output, label: bce(output, label * smooth)) if smooth < 1 else bce
    if args.loss == "wgan":
        optimizerD.register_step_post_hook(lambda *_: [p.data.clamp_(
            -args.clip_value, args.clip_value) for p in modelD.parameters()])
    critic = getattr(netD, "_orig_mod", netD)  # double backward: through DDP, not compiled

    def penalty(real, fake):
        if args.loss != "wgan-gp":
            return torch.zeros((), device=real.device)
        eps = torch.rand(real.size(0), 1, 1, 1, device=real.device)
        x_hat = (eps * real.float() + (1 - eps) * fake.float()).requires_grad_(True)
        with torch.autocast(real.device.type, enabled=False):  # fp32 for the double backward
            grad, = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
        gp = 10 * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()  # the paper's weight
        scaler.scale(gp).backward()
        return gp
    return criterion, penalty


def failure_signs(args, D_losses, fake_std, real_std, warned):
    """The article's failure signs, each warned about once: D wins, or samples collapse."""
    x, n = args.label_smoothing, min(200, max(8, len(D_losses) // 4))
    least = -(1 - x) * math.log(1 - x) - (x * math.log(x) if x else 0.0)  # BCE's, smoothed
    recent = [float(d) for d in D_losses[-n:]]
    if args.loss == "bce" and len(recent) == n and max(recent) < least + 0.1 and "d" not in warned:
        warned.add("d")
        yield (f"Loss_D has been near its minimum for {n} iterations: D wins, G's gradients "
               f"vanish (flat or noisy samples). Early on this often passes (the tutorial's run "
               f"recovers by ~250); if not, try --lr-d 0.0001, --g-updates 2 or --loss wgan-gp")
    if len(D_losses) >= 100 and fake_std < 0.1 * real_std and "std" not in warned:
        warned.add("std")
        yield (f"samples are collapsing (pixel std over the batch {fake_std:.3f}, real images "
               f"{real_std:.3f}): mode collapse. Try --loss wgan-gp or --d-updates 2")


def save_progress_figure(modelG, modelD, args, iters):
    """The article's progress figure: 8 fakes titled with D's score, in OUT/visualization/."""
    with torch.no_grad():
        fakes = sampling_copy(modelG, args)(torch.randn(8, args.nz, 1, 1, device=args.device))
        scores = LOSSES[args.loss][2](modelD.eval()(fakes).view(-1)).tolist()  # Keras' predict
    modelD.train()
    fig, axes = plt.subplots(1, 8, figsize=(24, 3), subplot_kw=dict(xticks=[], yticks=[]))
    for ax, image, score in zip(axes, fakes.float().cpu() * 0.5 + 0.5, scores):
        ax.set_title(f"{score:.3f}")
        ax.imshow(image.clamp(0, 1).permute(1, 2, 0).squeeze().numpy(), cmap="gray")
    os.makedirs(os.path.join(args.out, "visualization"), exist_ok=True)
    fig.savefig(os.path.join(args.out, "visualization", f"{iters:010d}.jpg"), bbox_inches="tight")
    plt.close(fig)


# -- G. Evaluation: FID and Inception Score with torch-fidelity ---------------------------------
def fid_report(modelG, dataset, args, epoch, iters):
    """--fid N: FID of N samples against N real images, and their Inception Score, by
    torch-fidelity's calculate_metrics; a metrics.csv row."""
    import torch_fidelity
    n, t0, sampleG = min(args.fid, len(dataset)), time.perf_counter(), sampling_copy(modelG, args)
    pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(args.seed))[:n]
    gen = torch.Generator(args.device).manual_seed(args.seed + 1)  # the same noise every time
    u8 = lambda x: ((x.float() + 1) * 127.5).round().clamp(0, 255).byte().expand(-1, 3, -1, -1)
    with torch.no_grad():  # torch-fidelity's Inception takes uint8 RGB images
        fakes = torch.cat([u8(sampleG(torch.randn(len(k), args.nz, 1, 1, generator=gen,
                                                  device=args.device)).cpu())
                           for k in pick.split(500)])
    real = torch.cat([u8(to_model_range(dataset[int(k)][0][None])) for k in pick])
    try:  # offline, torch-fidelity cannot download its Inception weights
        m = torch_fidelity.calculate_metrics(
            input1=torch.utils.data.Subset(fakes, range(n)), fid=True, isc=True, verbose=False,
            input2=torch.utils.data.Subset(real, range(n)), cuda=args.device.type == "cuda",
            feature_extractor_weights_path=args.fid_weights, save_cpu_ram=True)
    except OSError as e:
        fail(f"FID: cannot get torch-fidelity's Inception weights ({e}); on an offline machine "
             f"pass --fid-weights with weights-inception-2015-12-05-6726825d.pth")
    fid, score = m["frechet_inception_distance"], m["inception_score_mean"]
    print(f"FID: {fid:.2f}, Inception Score: {score:.2f} ({n} samples against {n} real images, "
          f"{time.perf_counter() - t0:.0f} s)", flush=True)
    with open(os.path.join(args.out, "metrics.csv"), "a", newline="") as f:
        csv.DictWriter(f, METRICS).writerow(dict(epoch=epoch, iteration=iters, fid=round(fid, 3),
                                                 inception_score=round(score, 3)))


# -- H. Generate: samples of a saved generator, without training (its weights only) -------------
def generate(args):
    """G from a generator_weights.pt or checkpoint.pt (weights only: no code runs)."""
    saved = load_checkpoint(args.generate, SCRIPT)
    s = saved.get("settings") or saved.get("args") or {}
    try:  # the flags' own checks: a tampered file cannot ask for absurd sizes
        with contextlib.redirect_stderr(open(os.devnull, "w")):
            s = vars(parse_args([f"--{k.replace('_', '-')}={s[k]}" for k in GENERATOR_SETTINGS]))
        netG = Generator(1, s["nz"], s["ngf"], s["nc"], s["image_size"]) if s["arch"] == "dcgan" \
            else build_generator(s["nz"], s["nc"], s["net_capacity"], s["filter_size"])
        state = saved.get("state_dict") or saved.get("netG")  # weights file, or checkpoint
        if saved.get("ema"):  # a checkpoint of an --ema run: the average's weights
            state = {k[7:]: v for k, v in saved["ema"].items() if k.startswith("module.")}
        netG.load_state_dict(state)
    except (SystemExit, KeyError, TypeError, ValueError, RuntimeError, AttributeError):
        fail(f"{args.generate} holds settings or weights this script cannot build; pass a "
             f"generator_weights.pt written by {SCRIPT}.py")
    device, args.nz = pick_device(args.device), s["nz"]
    netG = sampling_copy(netG.to(device), args)
    torch.manual_seed(args.seed)
    print(f"Random Seed:  {args.seed}\ndevice: {device}")
    with torch.no_grad():
        fake = netG(torch.randn(args.num_samples, s["nz"], 1, 1, device=device)).cpu()
    with prepare_out(args.out, new_run=False):  # holds --out while writing
        vutils.save_image(fake, os.path.join(args.out, "generated.png"), padding=2,
                          normalize=True, value_range=(-1, 1), nrow=int(args.num_samples ** 0.5))
        torch.save(fake, os.path.join(args.out, "generated.pt"))  # the images, for your tools
    print(f"wrote {args.out}/generated.png and generated.pt ({tuple(fake.shape)}, in [-1, 1])")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
