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
1) to images (N, nc, S, S) in [-1, 1] on the CPU; it runs code from the file: load only files
you trust.
"""
import argparse
import contextlib
import copy
import csv
import datetime
import math
import os
import random
import sys
import tempfile
import time
import types

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
from torch.optim.swa_utils import update_bn

from common import (ArgumentParser, atomic_save, command_line, fail, generate_out,
                    ignore_signals, int_range, load_checkpoint, parse, pick_device, pick_precision,
                    positive_float, positive_int, prepare_out, run, save_generator, seed_int,
                    stop_on_ctrl_c, unit_interval)

SCRIPT = "dcgan_celeba"
# --tutorial: the tutorial's values, and none of the additions that change results or speed
TUTORIAL = dict(batch_size=128, lr=0.0002, lr_d=None, beta1=0.5, ema=0.0, amp="off",
                decode_once=False, channels_last=False)
MAY_CHANGE = {"epochs", "time_budget", "log_every", "sample_every", "checkpoint_every", "device",
              "workers", "fid", "fid_weights", "fid_every", "decode_once", "amp"}  # with --resume


# -- Inputs ------------------------------------------------------------------------------------
def parse_args(argv=None):
    """The tutorial's inputs as flags, its comments as help; more_flags() adds the rest."""
    p = ArgumentParser(prog="dcgan_celeba.py", description="The PyTorch DCGAN tutorial on CelebA "
                       "faces (or any folder of images), plus advanced topics; resumable.")
    add = p.add_argument_group("the tutorial's inputs").add_argument
    add("--tutorial", action="store_true", help="the tutorial's settings: --batch-size 128 "
        "--lr 0.0002 --beta1 0.5 --ema 0 --amp off --no-decode-once --no-channels-last. Still "
        "different: D ends in logits for BCEWithLogitsLoss (the same loss), and samples are "
        "drawn with batch-norm statistics of their own")
    add("--dataroot", default="data/celeba", help="Root directory for dataset")
    add("--workers", type=int_range(0, 64), default=2, help="Number of workers for dataloader")
    add("--batch-size", type=int_range(2, 4096), default=64, help="Batch size during training "
        "(the tutorial's: 128). Under torchrun: the total, split evenly over the processes; "
        "batch norm then sees each process's share only")
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
    more_flags(p)  # appendix A
    first = p.parse_args(argv)  # the Keras model and the Wasserstein losses imply settings
    p.set_defaults(**{**IMPLIED.get(first.arch, {}), **IMPLIED.get(first.loss, {})})
    args, checkpoint = parse(p, argv, TUTORIAL, SCRIPT, MAY_CHANGE, paths=("dataroot",))
    args.checkpoint, args.command = checkpoint, command_line(p, args, check_args(args))
    args.saved = {a.dest: getattr(args, a.dest) for a in p._actions if a.dest != "help"}
    args.saved.update(dataroot=os.path.abspath(args.dataroot))
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
    # Create the dataset (Addition: FolderOfImages, appendix C: also a flat folder, bad files)
    dataset = FolderOfImages(root=dataroot,
                             transform=transforms.Compose([
                                 transforms.Resize(image_size),
                                 transforms.CenterCrop(image_size),
                                 transforms.ToTensor(),
                                 transforms.Normalize((0.5,) * nc, (0.5,) * nc),
                             ] + [transforms.Grayscale()] * (nc == 1)))
    # Decide which device we want to run on (Addition: --device, or torchrun's local GPU)
    device = args.device
    # Create the dataloader (Addition: DistributedSampler for shuffle=True, each process's share
    # of a seeded order per epoch; with --decode-once, the images decoded once, on the device)
    dataloader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size // args.world,
                                             sampler=EpochSampler(dataset, args),
                                             num_workers=workers, collate_fn=readable_batch,
                                             worker_init_fn=ignore_signals,
                                             generator=torch.Generator().manual_seed(manualSeed))
    decoded = decode_once(dataset, args, ctrl_c) if args.decode_once else None
    dataloader = epochs_of(dataloader if decoded is None else decoded, args)  # set_epoch, start
    print(f"dataset: {dataloader.count} images, {len(dataloader)} batches of "
          f"{args.batch_size // args.world} per epoch" + " per process" * (args.world > 1))

    # Plot some training images
    real_batch = next(iter(dataloader))
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
# so at 64 the layers and the printed model are exactly the tutorial's; ngpu is unused: the
# tutorial's DataParallel is torchrun's DistributedDataParallel here, appendix D) ---------------
class Generator(nn.Module):
    def __init__(self, ngpu=1, nz=100, ngf=64, nc=3, image_size=64):
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
    def __init__(self, ngpu=1, nc=3, ndf=64, image_size=64, norm=nn.BatchNorm2d):
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
            # Addition: no nn.Sigmoid(): D returns logits, the sigmoid is in the loss (below)
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
    # Handle multi-gpu if desired: torchrun's DistributedDataParallel, in speed_up() below
    # Apply the weights_init function to randomly initialize all weights
    #  to mean=0, stdev=0.02.
    netG.apply(weights_init)
    if args.arch == "encoder-decoder":  # Addition: the article's Keras model
        netG = build_generator(nz, nc, args.net_capacity, args.filter_size).to(device)
    # Print the model
    print(netG)

    # Create the Discriminator
    netD = Discriminator(ngpu, nc, ndf, args.image_size, critic_norm(args)).to(device)
    # Apply the weights_init function to randomly initialize all weights
    #  to mean=0, stdev=0.2.
    netD.apply(weights_init)
    if args.arch == "encoder-decoder":  # Addition: the article's Keras model
        netD = build_discriminator(nc, args.net_capacity, args.filter_size,
                                   critic_norm(args)).to(device)
    # Print the model
    print(netD)

    # Initialize BCELoss function (Addition: BCEWithLogitsLoss, the same loss with D's Sigmoid
    # inside, where it is computed stably; --loss and --label-smoothing: appendix F)
    criterion = nn.BCEWithLogitsLoss()
    criterion, criterionG, D_of = losses(args, criterion)  # D's, G's; D's output as printed
    # Create batch of latent vectors that we will use to visualize
    #  the progression of the generator
    fixed_noise = torch.randn(64, nz, 1, 1, device=device)
    # Establish convention for real and fake labels during training
    real_label = 1.
    fake_label = 0.
    # Setup Adam optimizers for both G and D (Addition: --lr-d, --beta2; fused on CUDA)
    fused = device.type == "cuda"  # one kernel, and no host sync for --amp fp16's inf check
    optimizerD = optim.Adam(netD.parameters(), lr=args.lr_d or lr, betas=(beta1, args.beta2),
                            fused=fused)
    optimizerG = optim.Adam(netG.parameters(), lr=lr, betas=(beta1, args.beta2), fused=fused)

    # Training Loop
    # Lists to keep track of progress
    img_list = []
    G_losses = []
    D_losses = []
    iters = 0

    # Additions, each set up once here (appendices below); the loop calls each in one line
    G_ema = average(netG, optimizerG, args)  # --ema: G's moving average, for samples and files
    penalty = critic_rules(args, netD, optimizerD)  # WGAN's clipping; WGAN-GP's penalty
    scaler = speed_up(netG, netD, args)  # channels-last, --amp, --compile; --amp fp16's scaler
    control = Control(args, ctrl_c, dataloader, img_list, G_losses, D_losses, dict(
        netG=netG, netD=netD, optimizerG=optimizerG, optimizerD=optimizerD, scaler=scaler,
        G_ema=G_ema))  # checkpoints and --resume, stops, progress lines, metrics.csv
    netG, netD = distributed(netG, netD, args)  # torchrun: DistributedDataParallel
    iters, start_epoch = control.resume()  # --resume: every part as it was saved
    errG = D_G_z2 = control.last_G_loss()  # until G's first step (--d-updates)

    print("Starting Training Loop...")
    # For each epoch
    for epoch in range(start_epoch, num_epochs):
        dataloader.set_epoch(epoch)  # Addition: this epoch's order (after --resume: its rest)
        # For each batch in the dataloader
        for i, data in enumerate(dataloader, dataloader.start):
            ############################
            # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
            ###########################
            ## Train with all-real batch
            netD.zero_grad()
            # Format batch
            real_cpu = data[0].to(device)
            b_size = real_cpu.size(0)
            label = torch.full((b_size,), real_label, dtype=torch.float, device=device)
            # Forward pass real batch through D
            output = netD(real_cpu).view(-1)
            # Calculate loss on all-real batch
            errD_real = criterion(output, label)
            # Calculate gradients for D in backward pass
            scaler.scale(errD_real).backward()
            D_x = D_of(output).mean()

            ## Train with all-fake batch
            # Generate batch of latent vectors
            noise = torch.randn(b_size, nz, 1, 1, device=device)
            # Generate fake image batch with G
            fake = netG(noise)
            label.fill_(fake_label)
            # Classify all fake batch with D
            output = netD(fake.detach()).view(-1)
            # Calculate D's loss on the all-fake batch (Addition: WGAN-GP's gradient penalty)
            errD_fake = criterion(output, label) + penalty(real_cpu, fake.detach())
            # Calculate the gradients for this batch, accumulated (summed) with previous gradients
            scaler.scale(errD_fake).backward()
            D_G_z1 = D_of(output).mean()
            # Compute error of D as sum over the fake and the real batches
            errD = errD_real + errD_fake
            # Update D
            scaler.step(optimizerD)

            ############################
            # (2) Update G network: maximize log(D(G(z)))
            ###########################
            # Addition: --d-updates D steps for each G step, and --g-updates G steps then
            g_steps = args.g_updates if (iters + 1) % args.d_updates == 0 else 0
            for g_step in range(g_steps):
                if g_step:  # a new batch of fakes for each further G step (its own loss scale)
                    scaler.update()
                    fake = netG(torch.randn_like(noise))
                netG.zero_grad()
                label.fill_(real_label)  # fake labels are real for generator cost
                # Since we just updated D, perform another forward pass of all-fake batch through D
                with no_sync(netD):  # Addition: torchrun: D's gradients here stay local
                    output = netD(fake).view(-1)
                # Calculate G's loss based on this output
                errG = criterionG(output, label)
                # Calculate gradients for G
                scaler.scale(errG).backward()
                D_G_z2 = D_of(output).mean()
                # Update G
                scaler.step(optimizerG)
            scaler.update()  # Addition: --amp fp16's loss scale, once per iteration

            # Output training stats (Addition: every --log-every; images/s, ETA, metrics.csv)
            if i % args.log_every == 0 or i == len(dataloader) - 1:
                print('[%d/%d][%d/%d]\tLoss_D: %.4f\tLoss_G: %.4f\tD(x): %.4f\tD(G(z)): %.4f / %.4f'
                      % (epoch, num_epochs, i, len(dataloader),
                         *control.values(errD, errG, D_x, D_G_z1, D_G_z2)), end="")
                control.log(epoch, iters, fake, real_cpu)

            # Save Losses for plotting later (Addition: as tensors, no host sync: see numbers())
            G_losses.append(errG.detach())
            D_losses.append(errD.detach())

            # Check how the generator is doing by saving G's output on fixed_noise
            if control.sample_now(iters, epoch, i):  # every --sample-every, the last, a stop
                with torch.no_grad():
                    fake = sampling_copy(G_ema, args)(fixed_noise).detach().cpu()
                img_list.append(vutils.make_grid(fake, padding=2, normalize=True))

            iters += 1
            if control.stop(epoch, i, iters):  # Addition: Ctrl-C, --time-budget, checkpoints
                break
        if control.stopped:
            break
    return results(args, img_list, G_losses, D_losses, real_batch, G_ema, fixed_noise, iters,
                   control, dataloader)


# -- Results -----------------------------------------------------------------------------------
def results(args, img_list, G_losses, D_losses, real_batch, G_ema, fixed_noise, iters, control,
            dataloader):
    """The tutorial's three results, as files; additions: the generator, FID, how to go on."""
    if args.rank:  # torchrun: rank 0 writes, the others wait for it (torchrun ends them all)
        return control.summary(iters)
    sampleG = sampling_copy(G_ema, args)  # Addition: see sampling_copy
    G_losses, D_losses = numbers(G_losses), numbers(D_losses)
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

    # Addition: the generator (for --generate, and on the CPU for other projects), FID, the end
    save_generator(sampleG.cpu().to(memory_format=torch.contiguous_format),
                   (fixed_noise[:2].cpu(),), args.out, SCRIPT,
                   {k: args.saved[k] for k in RUN_SETTINGS})
    if control.stopped != "interrupted":  # the last FID, fid.png, is it copying? (appendix G)
        quality_at_end(control, dataloader.dataset, iters)
    return control.summary(iters)


# == Appendices: what the script adds to the tutorial, each set up by one call above ==========
# -- A. Flags beyond the tutorial's inputs ------------------------------------------------------
IMPLIED = {"encoder-decoder": dict(batch_size=32, beta1=0.9),
           "wgan": dict(lr=0.00005, beta1=0.0, beta2=0.9, d_updates=5),
           "wgan-gp": dict(lr=0.0001, beta1=0.0, beta2=0.9, d_updates=5)}  # as published
GENERATOR_SETTINGS = ("arch", "nz", "ngf", "nc", "image_size", "net_capacity", "filter_size")
RUN_SETTINGS = GENERATOR_SETTINGS + ("dataroot", "seed", "holdout")  # for --generate --nearest


def more_flags(p):
    on_off = argparse.BooleanOptionalAction
    add = p.add_argument_group("data and speed").add_argument
    add("--decode-once", action=on_off, default=True, help="decode each image once, into "
        "memory (on the GPU when it fits), instead of reading the files every epoch")
    add("--amp", choices=["auto", "off", "bf16", "fp16"], default="auto", help="mixed "
        "precision; auto: bf16 where it is fast (CPUs with AVX512-BF16, CUDA GPUs from compute "
        "capability 8.0), fp16 with a GradScaler on older CUDA GPUs, else off")
    add("--channels-last", action=on_off, default=True, help="keep images and weights in the "
        "NHWC memory layout (faster convolutions)")
    add("--compile", action="store_true", help="torch.compile G and D (slow to start)")
    add("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto",
        help="auto: cuda, then mps, then cpu (torchrun: each process's own GPU)")
    add = p.add_argument_group("additions").add_argument
    add("--arch", choices=["dcgan", "encoder-decoder"], default="dcgan", help="the tutorial's "
        "networks, or the Keras model of 'Turing Learning and GANs, Part 2' (64 px; sets "
        "--batch-size 32 --beta1 0.9)")
    add("--net-capacity", type=int_range(1, 256), default=16,
        help="encoder-decoder: filters of its first layer")
    add("--filter-size", type=int, choices=range(1, 16, 2), default=5, metavar="{1,3,..,15}",
        help="encoder-decoder: kernel size of its convolutions")
    add("--loss", choices=["bce", "hinge", "wgan", "wgan-gp"], default="bce", help="bce: the "
        "tutorial's; wgan and wgan-gp set their papers' --lr, --beta1, --beta2, --d-updates")
    add("--clip-value", type=positive_float, default=0.01,
        help="wgan: D's weights are kept in [-c, c]")
    add("--beta2", type=unit_interval, default=0.999, help="Adam's beta2, for G and D")
    add("--lr-d", type=positive_float, help="D's learning rate (default: --lr)")
    add("--d-updates", type=int_range(1, 100), default=1, help="D steps for each G step")
    add("--g-updates", type=int_range(1, 100), default=1, help="G steps after each D step")
    add("--label-smoothing", type=unit_interval, default=0.0,
        help="D's target for real images is 1 minus this (bce)")
    add("--ema", type=unit_interval, default=0.999, help="samples and saved files come from a "
        "moving average of G's weights with this decay (0: G itself)")
    add = p.add_argument_group("evaluation").add_argument
    add("--fid", type=int_range(0, 100000), default=0, metavar="N", help="every --fid-every "
        "epochs: FID, KID and Inception Score of N samples against N real images; the generator "
        "of the lowest FID kept in OUT/best/ (needs torch-fidelity)")
    add("--fid-every", type=int_range(1, 100000), default=1, metavar="K",
        help="--fid every K epochs")
    add("--holdout", type=int_range(0, 10**9), metavar="N", help="images held out of training "
        "(a seeded choice, before training) for the copying ratio (default: min(1000, 10%%); "
        "none in folders under 200 images)")
    add("--fid-weights", metavar="PATH", help="torch-fidelity's Inception weights file, for "
        "machines that cannot download it")
    add("--generate", metavar="PATH", help="no training: samples from a run's "
        "generator_weights.pt, into a new folder beside it (or --out)")
    add("--num-samples", type=int_range(1, 1024), default=64, help="images for --generate")
    add("--nearest", action="store_true", help="with --generate: nearest.png and the copying "
        "ratio, against the run's training and held-out images")
    add("--interpolate", type=int_range(2, 100), metavar="K", help="with --generate: rows of K "
        "images along a spherical path between two random noise points (interpolation.png, .pt)")
    add = p.add_argument_group("run control").add_argument
    add("--seed", type=seed_int, default=999,
        help="random seed, printed at the start (the tutorial's manualSeed: 999)")
    add("--out", help=f"folder for everything written (default: outputs/{SCRIPT})")
    add("--overwrite", action="store_true", help="replace an earlier run in --out")
    add("--resume", metavar="PATH", help="continue the run of this checkpoint.pt")
    add("--time-budget", type=positive_float, metavar="SECONDS",
        help="end the whole run, files included, within this many seconds")
    add("--log-every", type=positive_int, default=50, help="a stats line every N iterations")
    add("--sample-every", type=positive_int, default=500,
        help="a grid of samples for progress.gif every N iterations")
    add("--checkpoint-every", type=int_range(0, 2**31), default=0,
        help="also write checkpoint.pt every N iterations (0: each epoch's end only)")
    add("--dry-run", action="store_true", help="one iteration, then every file")
    add("--show", action="store_true", help="also show the figures in windows")


def check_args(args):
    """Refuses what no flag's type can; returns the flags idle in this run (not echoed)."""
    keras, loss = args.arch == "encoder-decoder", args.loss
    if keras and args.image_size != 64:
        fail("--arch encoder-decoder is the article's 64x64 model: use --image-size 64")
    if args.label_smoothing and loss != "bce":
        fail("--label-smoothing goes with --loss bce")
    if (args.nearest or args.interpolate) and not args.generate:
        fail("--nearest and --interpolate go with --generate PATH")
    idle = dict(net_capacity=not keras, filter_size=not keras, ngf=keras, ndf=keras,
                clip_value=loss != "wgan", label_smoothing=not args.label_smoothing,
                fid=not args.fid, fid_every=not args.fid, ema=not args.ema,
                checkpoint_every=not args.checkpoint_every,
                num_samples=not args.generate, nearest=not args.nearest,
                interpolate=not args.interpolate)
    return [k for k, v in idle.items() if v]


# -- B. Run control: torchrun, checkpoints and resume, stops, progress, metrics.csv -------------
def main(argv=None):
    args = parse_args(argv)
    if args.generate:
        return generate(args)
    args.out = args.out or f"outputs/{SCRIPT}"
    args.started = time.monotonic()  # --time-budget counts from here: decoding included
    args.world, args.rank, args.ddp, local = torchrun_env()
    if args.batch_size % args.world or args.batch_size // args.world < 2:
        fail(f"--batch-size {args.batch_size}: split over {args.world} processes, at least 2 each")
    cuda = args.ddp and args.device in ("auto", "cuda") and torch.cuda.is_available()
    args.device = torch.device("cuda", local) if cuda else \
        pick_device("cpu" if args.ddp and args.device == "auto" else args.device)
    args.precision = pick_precision(args.device, args.amp)
    if args.fid:
        args.fidelity = fid_check(args)  # torch-fidelity and its weights now, not at the end
    if args.rank == 0:
        print("arguments: " + args.command)
    out_lock = prepare_out(args.out, not args.resume, args.overwrite, data=args.dataroot) \
        if args.rank == 0 else None
    if not args.show:
        plt.switch_backend("Agg")
    if args.ddp:  # torchrun: a process per GPU (or per CPU worker), in a process group
        if cuda:
            torch.cuda.set_device(args.device)
        dist.init_process_group("nccl" if cuda else "gloo")
        if args.rank:
            sys.stdout = open(os.devnull, "w")  # rank 0 prints; every rank's errors show
    print(f"device: {args.device}" + f" x {args.world} processes (torchrun)" * args.ddp +
          {"off": ", float32", "bf16": ", bf16 autocast", "fp16": ", fp16 autocast with a "
           "GradScaler"}[args.precision])
    try:
        with stop_on_ctrl_c() as ctrl_c:
            return train(args, ctrl_c)
    finally:
        if args.ddp:
            dist.destroy_process_group()
        del out_lock


def torchrun_env():
    """(world, rank, ddp, local rank): torchrun's variables, checked as a whole."""
    names = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    env = {k: os.environ.get(k) for k in names}
    if not any(env[k] for k in names[1:3]) and env["WORLD_SIZE"] in (None, "", "1"):
        return 1, 0, False, 0  # one process (a lone WORLD_SIZE=1 is one process too)
    ok = all(env[k] for k in names) and all(env[k].isdigit() for k in names[:3]) and \
        int(env["RANK"]) < int(env["WORLD_SIZE"]) and int(env["LOCAL_RANK"]) <= int(env["RANK"])
    if not ok:
        fail("WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR and MASTER_PORT are torchrun's: start "
             "several processes with torchrun --standalone --nproc_per_node=N dcgan_celeba.py "
             "..., or unset them")
    return int(env["WORLD_SIZE"]), int(env["RANK"]), True, int(env["LOCAL_RANK"])


class Control:
    """Everything around the loop: --resume, checkpoint.pt, stops (Ctrl-C, SIGTERM,
    --time-budget, --dry-run; under torchrun agreed at log lines), the progress line's
    images/s and ETA, metrics.csv and the failure signs."""

    def __init__(self, args, ctrl_c, dataloader, img_list, G_losses, D_losses, parts):
        self.args, self.ctrl_c, self.loader, self.G_ema = args, ctrl_c, dataloader, parts["G_ema"]
        self.parts = {k: v for k, v in parts.items() if k != "G_ema" or v is not parts["netG"]}
        self.img_list, self.G_losses, self.D_losses = img_list, G_losses, D_losses
        self.stopped, self.why, self.epoch, self.warned, self.first = None, None, 0, set(), True
        self.fid, self.best, self.recent = [], [], []  # --fid's rows, [epoch, FID]; D's outputs
        self.reserve = 2.0 + (args.fid or 0) * (0.002 if args.device.type == "cuda" else 0.05) \
            + 0.002 * min(2000, dataloader.count)  # the last FID; nearest.png reads images
        self.end = args.started + (args.time_budget or math.inf)

    def resume(self):
        """Restores --resume's checkpoint; (iters, epoch) to go on from."""
        ckpt, path, args = self.args.checkpoint, self.args.resume, self.args
        self.metrics = open(os.path.join(args.out, "metrics.csv") if args.rank == 0 else
                            os.devnull, "a" if ckpt else "w", newline="", buffering=1)
        self.writer = csv.DictWriter(self.metrics, METRICS)
        if not ckpt:
            self.writer.writeheader()
            self.last = (time.perf_counter(), 0)  # the next line's images/s: from here
            self.step_started = self.last[0]
            return 0, 0
        if ckpt.get("world", 1) != args.world:
            fail(f"{path} was trained by {ckpt.get('world', 1)} process(es), this is "
                 f"{args.world}: resume it with as many (torchrun --nproc_per_node="
                 f"{ckpt.get('world', 1)})")
        try:
            for name, part in self.parts.items():
                part.load_state_dict(ckpt[name])
            torch.set_rng_state(ckpt["rng"][args.rank][0])
            if args.device.type == "cuda" and ckpt["rng"][args.rank][1] is not None:
                torch.cuda.set_rng_state(ckpt["rng"][args.rank][1], args.device)
            self.img_list += [g.float() / 255 for g in ckpt["img_list"]]
            self.G_losses += ckpt["G_losses"]
            self.D_losses += ckpt["D_losses"]
            self.G_ema.steps = ckpt["ema_steps"]
            self.loader.start, self.epoch = ckpt["batch"], ckpt["epoch"]
            self.fid, self.best = ckpt.get("fid", []), ckpt.get("best", [])
        except (RuntimeError, ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
            fail(f"{path} does not fit these networks ({str(e).splitlines()[0][:120]})")
        print(f"resumed {path}: epoch {ckpt['epoch']}, batch {ckpt['batch']}, iter "
              f"{ckpt['iters']}")
        self.last = (time.perf_counter(), ckpt["iters"])  # the next line's images/s: from here
        self.step_started = self.last[0]
        return ckpt["iters"], ckpt["epoch"]

    def last_G_loss(self):
        return torch.tensor(float(self.G_losses[-1]) if self.G_losses else 0.0,
                            device=self.args.device)

    def values(self, errD, errG, D_x, D_G_z1, D_G_z2):
        """The progress line's numbers, copied to the host in one go (one sync per line)."""
        self.numbers = torch.stack([t.detach().float() for t in (errD, errG, D_x, D_G_z1,
                                                                 D_G_z2)]).tolist()
        return self.numbers

    def log(self, epoch, iters, fake, real):
        """The line's images/s and ETA (the rest of the tutorial's line); metrics.csv; warnings."""
        args, (t, done) = self.args, self.last
        now, done_now = time.perf_counter(), iters + 1
        rate = (done_now - done) * args.batch_size / max(now - t, 1e-9)
        self.last = (now, done_now)
        left = max(args.epochs * len(self.loader) - done_now, 0) * args.batch_size / rate
        left = min(left, self.end - time.monotonic() if args.time_budget else left)
        print(f"\t{rate:.1f} img/s\tETA {datetime.timedelta(seconds=round(max(left, 0)))}")
        fake_std, real_std = torch.stack([x.detach().float().std(0).mean()
                                          for x in (fake, real)]).tolist()
        errD, errG, D_x, D_G_z1, D_G_z2 = self.numbers
        self.recent = (self.recent + [(D_x, D_G_z1)])[-20:]  # for the summary's health lines
        self.writer.writerow(dict(epoch=epoch, iteration=iters, loss_d=errD, loss_g=errG,
                                  d_x=D_x, d_g_z1=D_G_z1, d_g_z2=D_G_z2, fake_std=fake_std,
                                  images_per_sec=rate))
        if not all(map(math.isfinite, (errD, errG))):
            fail(f"Loss_D {errD} and Loss_G {errG} at iteration {iters}: training diverged; "
                 f"start again with a lower --lr (the last checkpoint.pt is from before)")
        for warning in failure_signs(args, numbers(self.D_losses), fake_std, real_std,
                                     self.warned):
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        if args.arch == "encoder-decoder" and args.rank == 0:  # the article's figure
            save_progress_figure(self.G_ema, self.parts["netD"], args, iters)

    def sample_now(self, iters, epoch, i):
        """Whether to draw img_list's grid now; decides first (every process) whether to stop."""
        self.why = self.stop_reason(i)
        last = epoch == self.args.epochs - 1 and i == len(self.loader) - 1
        return self.args.rank == 0 and (iters % self.args.sample_every == 0 or last or
                                        self.why is not None)

    def stop_reason(self, i):
        """Why to stop after batch i, or None. Under torchrun the processes agree at log lines."""
        args = self.args
        if args.dry_run:
            return "dry run"
        left = getattr(self, "step_time", 0.0) + self.reserve + 0.2 * len(self.img_list)
        flags = [self.ctrl_c.requested, time.monotonic() + left > self.end]  # 0.2: a gif frame
        if args.ddp:
            if i % args.log_every:
                return None
            flags = torch.tensor(flags, dtype=torch.float, device=args.device)
            dist.all_reduce(flags, op=dist.ReduceOp.MAX)
            flags = flags.tolist()
        return next((why for why, on in zip(("interrupted", "--time-budget spent"), flags)
                     if on), None)

    def stop(self, epoch, i, iters):
        """After each iteration: a checkpoint on a stop, at an epoch's end, every
        --checkpoint-every; True to leave the loop."""
        now = time.perf_counter()
        self.step_time, self.step_started = now - self.step_started, now
        if self.first:  # the first iteration (its warm-up, the first grid): the files at the
            self.first, self.reserve = False, self.reserve + 2 * self.step_time  # end, as long
        why, end = self.why, i + 1 == len(self.loader)
        self.epoch = epoch
        every = self.args.checkpoint_every and iters % self.args.checkpoint_every == 0
        if end and self.args.fid and (epoch + 1) % self.args.fid_every == 0 and not why and \
                time.monotonic() + 2 * getattr(self, "fid_cost", 0.0) + self.reserve < self.end:
            spent = self.fid_cost = measure(self, epoch, iters) if self.args.rank == 0 else 0.0
            self.step_started, self.last = now + spent, (self.last[0] + spent, self.last[1])
        if why or end or every:
            self.checkpoint(epoch + end, 0 if end else i + 1, iters)
        self.loader.start = 0
        self.stopped = why
        return why is not None

    def checkpoint(self, epoch, batch, iters):
        """OUT/checkpoint.pt, atomically: what --resume needs (every process's random state)."""
        args, t0 = self.args, time.perf_counter()
        rng = [(torch.get_rng_state(), torch.cuda.get_rng_state(args.device)
                if args.device.type == "cuda" else None)] * args.world
        if args.ddp:
            dist.all_gather_object(rng, rng[0])
        if args.rank == 0:
            atomic_save({"script": SCRIPT, **{k: v.state_dict() for k, v in self.parts.items()},
                         "args": args.saved, "world": args.world, "rng": rng, "epoch": epoch,
                         "batch": batch, "iters": iters, "ema_steps": self.G_ema.steps,
                         "G_losses": numbers(self.G_losses), "D_losses": numbers(self.D_losses),
                         "fid": self.fid, "best": self.best,
                         "img_list": [(g * 255).round().byte() for g in self.img_list]},
                        os.path.join(args.out, "checkpoint.pt"))
        self.reserve = max(self.reserve, 2.0 + 2 * (time.perf_counter() - t0))

    def summary(self, iters):
        """The last lines: what stopped the run, where the files are, how to go on."""
        args, why = self.args, self.stopped
        why = "interrupted" if self.ctrl_c.requested else why  # also during the files at the end
        if args.rank:
            dist.barrier()
            return 130 if why == "interrupted" else 0
        print(f"{why or 'done'} after {iters} iterations; the figures and files are in "
              f"{args.out}")
        if why or args.dry_run:
            launcher = "python" if args.world == 1 else f"torchrun --nproc_per_node={args.world}"
            more = "" if why else " --epochs N"
            print(f"continue with: {launcher} {sys.argv[0]} --resume "
                  f"{os.path.join(args.out, 'checkpoint.pt')}{more}",
                  file=sys.stderr if why == "interrupted" else sys.stdout)
        if iters * args.batch_size < 200000:
            print(f"note: the tutorial's 5 epochs show D ~1M CelebA images and faces appear "
                  f"after ~200k: expect noise or blobs from this run's "
                  f"{iters * args.batch_size:,} images")
        print("\n".join(health(self, iters)))
        if self.best:
            print(f"best: epoch {self.best[0]}, FID {self.best[1]:.1f} "
                  f"({os.path.join(args.out, 'best', 'generator_weights.pt')})")
        if args.ddp:
            dist.barrier()  # every process ends once rank 0 has written its files
        return 130 if why == "interrupted" else 0


def numbers(losses):
    """The loss history as Python floats: the tensors appended since the last call are copied
    to the host in one go (one sync, not one per iteration)."""
    k = len(losses)
    while k and torch.is_tensor(losses[k - 1]):
        k -= 1
    if k < len(losses):
        losses[k:] = torch.stack(losses[k:]).float().tolist()
    return losses


METRICS = ["epoch", "iteration", "loss_d", "loss_g", "d_x", "d_g_z1", "d_g_z2", "fake_std",
           "images_per_sec", "fid", "kid", "inception_score"]


# -- C. The data: image files of any folder, decoded once, batches on the device, resumable -----
class FolderOfImages(dset.ImageFolder):
    """torchvision's ImageFolder, that also reads a flat folder of images, only regular files
    (a FIFO would block), without following folder links (a loop would never end), and gives
    (image, 1) for a file it cannot read (the tutorial's would stop the run): readable_batch
    replaces it."""

    def __init__(self, root, transform):
        if os.path.isdir(root):
            super().__init__(root, transform, allow_empty=True)
        if not getattr(self, "samples", None):
            fail(f"no images in --dataroot {root}: expected {root}/img_align_celeba/*.jpg (unzip "
                 f"img_align_celeba.zip there first), or a folder of images")

    def find_classes(self, directory):
        here = os.path.realpath(directory)  # a link to it, or above it, would loop
        classes = sorted(e.name for e in os.scandir(directory) if e.is_dir() and not
                         e.name.startswith(".") and not here.startswith(os.path.realpath(e)))
        if not any(f.lower().endswith(dset.folder.IMG_EXTENSIONS) for c in classes
                   for _, _, files in os.walk(os.path.join(directory, c)) for f in files):
            classes = ["."]  # a flat folder of images: one class, the folder itself
        return classes, {c: i for i, c in enumerate(classes)}

    @staticmethod
    def make_dataset(directory, class_to_idx, extensions=None, is_valid_file=None,
                     allow_empty=False):
        found = {}  # real path -> (path, 0): a file reached twice is read once
        for c in class_to_idx:
            for folder, _, files in sorted(os.walk(os.path.join(directory, c))):
                for f in sorted(files):
                    path = os.path.join(folder, f)
                    if f.lower().endswith(dset.folder.IMG_EXTENSIONS) and os.path.isfile(path):
                        found.setdefault(os.path.realpath(path), (path, 0))
        return list(found.values())

    def __getitem__(self, index):
        try:
            return super().__getitem__(index)[0], 0
        except Exception:  # truncated, corrupt, or not an image at all
            return self.transform(Image.new("RGB", (8, 8))), 1


def readable_batch(batch):
    """DataLoader's collate_fn: each unreadable image replaced by a readable one of the same batch
    (every process keeps its batch size, so torchrun's processes stay in step), and how many."""
    good = [x for x, bad in batch if not bad] or [x for x, _ in batch]
    images = [good[k % len(good)] if bad else x for k, (x, bad) in enumerate(batch)]
    return torch.stack(images), torch.tensor(sum(bad for _, bad in batch))


class EpochSampler(torch.utils.data.DistributedSampler):
    """The tutorial's shuffle=True as a DistributedSampler: each process's share of a seeded
    order per epoch (set_epoch), starting at batch `start` (a mid-epoch --resume)."""

    def __init__(self, dataset, args):
        args.held = hold_out(dataset, args)  # --holdout: taken out of the training set first
        super().__init__(dataset, args.world, args.rank, seed=args.seed, drop_last=args.world > 1)
        self.share, self.start = args.batch_size // args.world, 0

    def __iter__(self):
        return iter(list(super().__iter__())[self.start * self.share:])


def hold_out(dataset, args, say=True):
    """--holdout: a seeded choice of images taken out of `dataset` before training (the copying
    ratio's unseen images); returns them as a dataset of their own."""
    n, held = len(dataset.samples), copy.copy(dataset)
    k = args.holdout if args.holdout is not None else min(1000, n // 10) if n >= 200 else 0
    if k and k > n - 2:
        fail(f"--holdout {k} leaves {n - k} of the {n} images to train on; pass a smaller one")
    out = set(torch.randperm(n, generator=torch.Generator().manual_seed(args.seed))[:k].tolist())
    held.samples = held.imgs = [x for j, x in enumerate(dataset.samples) if j in out]
    dataset.samples = dataset.imgs = [x for j, x in enumerate(dataset.samples) if j not in out]
    dataset.targets = [c for _, c in dataset.samples]
    args.saved["holdout"] = k  # for --generate --nearest (and the same split on --resume)
    if say:
        print(f"holdout: {k} of the {n} images held out of training (seeded), for the copying "
              f"ratio" if k else f"holdout: none ({n} images; --holdout N holds N out of "
              f"training, for the copying ratio)")
    return held


def epochs_of(loader, args):
    """The loader with set_epoch(epoch) and .start (the batch it goes on from), counting the
    unreadable files it replaced; a last batch of one image is left out (batch norm needs 2)."""
    share = args.batch_size // args.world
    if isinstance(loader, torch.utils.data.DataLoader):
        loader, probe = FileBatches(loader, share), range(min(64, len(loader.dataset)))
        if all(loader.dataset[k][1] for k in probe):
            fail(f"none of the first {len(probe)} image files in {args.dataroot} can be read")
    loader.batches = loader.size // share + (loader.size % share > 1)
    if loader.batches == 0:
        fail(f"{loader.size} images are fewer than one --batch-size {args.batch_size}")
    loader.set_epoch(0)
    return loader


class FileBatches:
    """The tutorial's DataLoader (--no-decode-once), resumable mid-epoch."""

    def __init__(self, loader, share):
        self.loader, self.dataset, self.start = loader, loader.dataset, 0
        self.size, self.count = len(loader.sampler), len(loader.dataset)
        self.skipped = torch.zeros((), dtype=torch.long)

    def set_epoch(self, epoch):
        self.loader.sampler.set_epoch(epoch)
        self.loader.sampler.start, self.epoch = self.start, epoch

    def __len__(self):
        return self.batches

    def __iter__(self):
        for k, (x, bad) in enumerate(self.loader, self.start):
            if k < self.batches:
                self.skipped += bad  # a CPU tensor: no sync
                yield [x]
        if self.skipped and getattr(self, "epoch", 0) == 0:
            print(f"warning: replaced {int(self.skipped)} unreadable image file(s) by readable "
                  f"ones", file=sys.stderr)
        self.skipped.zero_()


class DeviceBatches:
    """The decoded images, as uint8 on the device when they fit in half its free memory (else
    pinned host memory): each batch one gather from the epoch's permutation, drawn from the
    seed and the epoch on the CPU (the same order on any device, so nothing to save for
    --resume) and copied to the device once per epoch. Each process takes its share."""

    def __init__(self, images, args, dataset):
        self.args, self.dataset, self.count, self.start = args, dataset, len(images), 0
        free = torch.cuda.mem_get_info(args.device)[0] if args.device.type == "cuda" else 0
        on_gpu = images.numel() < free // 2
        self.images = images.to(args.device) if on_gpu else \
            images.pin_memory() if args.device.type == "cuda" else images
        self.size = len(images) // args.world  # each process's share (the rest left out)

    def set_epoch(self, epoch):
        args = self.args
        order = torch.randperm(len(self.images), generator=torch.Generator().manual_seed(
            args.seed + epoch))[:self.size * args.world][args.rank::args.world]
        self.order = order.to(self.images.device)

    def __len__(self):
        return self.batches

    def __iter__(self):
        share = self.args.batch_size // self.args.world
        for idx in self.order.split(share)[self.start:self.batches]:
            x = self.images.index_select(0, idx)
            x = x.pin_memory() if self.images.is_pinned() else x  # then copied asynchronously
            yield [to_model_range(x.to(self.args.device, non_blocking=True))]


def decode_once(dataset, args, ctrl_c):
    """Every image through Resize and CenterCrop once, into memory as uint8 (CelebA at 64 px:
    2.5 GB), unless that takes over half the free memory (then None: the files are read each
    epoch). Under torchrun the first process of each machine decodes, the others read its
    copy; unreadable files are left out. Returns DeviceBatches."""
    n, S, nc = len(dataset), args.image_size, args.nc
    free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") if os.name == "posix" else 8e9
    fits = n * nc * S * S < free // (2 if not args.ddp else 2 + int(os.environ.get(
        "LOCAL_WORLD_SIZE", "1")))
    if args.ddp:  # every process decides the same
        agree = torch.tensor([float(fits)], device=args.device)
        dist.all_reduce(agree, op=dist.ReduceOp.MIN)
        fits = bool(agree.item())
    if not fits:
        print(f"decode-once: off ({n * nc * S * S / 1e9:.1f} GB, {free / 1e9:.1f} GB free)")
        return None
    shared = os.path.join(tempfile.gettempdir(), "gan-examples-decoded-{}-{}".format(
        os.environ.get("TORCHELASTIC_RUN_ID"), os.environ.get("MASTER_PORT")))  # this machine's
    if args.ddp and int(os.environ["LOCAL_RANK"]) != 0:
        dist.barrier()  # the first process of this machine decodes and saves
        images = torch.load(shared, mmap=True, weights_only=True)
        dist.barrier()
        return DeviceBatches(images, args, dataset)
    decoded = copy.copy(dataset)
    decoded.transform = transforms.Compose([transforms.Resize(S), transforms.CenterCrop(S),
                                            transforms.PILToTensor()]
                                           + [transforms.Grayscale()] * (nc == 1))
    loader = torch.utils.data.DataLoader(decoded, batch_size=256, num_workers=args.workers,
                                         worker_init_fn=ignore_signals, generator=torch.Generator())
    images, t0 = [], time.perf_counter()
    for k, (x, bad) in enumerate(loader):
        if ctrl_c.requested:
            print("stopped while decoding the images; nothing was trained", file=sys.stderr)
            raise KeyboardInterrupt
        images.append(x[bad == 0])
        if (k + 1) % 40 == 0 or k == len(loader) - 1:
            done, spent = min(n, (k + 1) * 256), time.perf_counter() - t0
            eta = datetime.timedelta(seconds=round((n - done) / done * spent))
            print(f"decoding the images once: {done}/{n}, ETA {eta}", flush=True)
    images = torch.cat(images)
    if len(images) == 0:
        fail(f"none of the {n} image files in {args.dataroot} can be read")
    if len(images) < n and args.rank == 0:
        print(f"warning: skipped {n - len(images)} unreadable image file(s)", file=sys.stderr)
    if args.ddp:
        if int(os.environ.get("LOCAL_WORLD_SIZE", "1")) > 1:
            atomic_save(images, shared)
        dist.barrier()
        dist.barrier()  # the others have read it
        with contextlib.suppress(OSError):
            os.remove(shared)
    return DeviceBatches(images, args, dataset)


def to_model_range(images):
    """uint8 images as ToTensor() and Normalize(0.5, 0.5) give them: u / 127.5 - 1."""
    return images.float().div_(127.5).sub_(1.0) if images.dtype == torch.uint8 else images


# -- D. Speed: channels-last, mixed precision in the networks' forward, compile, torchrun -------
def speed_up(netG, netD, args):
    """In place: channels-last weights; --amp's autocast around each network's forward only
    (the losses and backward passes stay outside, as PyTorch's AMP recipe asks), its output in
    float32; --compile. Returns the GradScaler (active under fp16 only)."""
    dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.precision]
    for net in (netG, netD):
        if args.channels_last:
            net.to(memory_format=torch.channels_last)
        if dtype:
            forward = torch.autocast(args.device.type, dtype)(type(net).forward)
            net.forward = types.MethodType(lambda self, *x, f=forward: f(self, *x).float(), net)
        if args.compile:
            net.compile()
    return torch.amp.GradScaler(args.device.type, enabled=args.precision == "fp16")


def distributed(netG, netD, args):
    """torchrun: each network in DistributedDataParallel (gradients averaged over processes);
    each process draws its own noise."""
    if not args.ddp:
        return netG, netD
    ids = [args.device.index] if args.device.type == "cuda" else None
    torch.manual_seed(args.seed + args.rank)
    return (nn.parallel.DistributedDataParallel(m, device_ids=ids) for m in (netG, netD))


def no_sync(net):
    """DDP's no_sync for G's step: D's gradients there are not used, so not all-reduced."""
    return net.no_sync() if isinstance(net, nn.parallel.DistributedDataParallel) else \
        contextlib.nullcontext()


# -- E. Sampling: G's average, and an eval-mode copy with batch-norm statistics of its own -----
def new_generator(s, state):
    """G of the settings `s` (the tutorial's, or the article's Keras model) with the weights of
    `state` (copied, float32), built on the meta device: no memory, no random numbers used."""
    with torch.device("meta"):
        G = Generator(1, s["nz"], s["ngf"], s["nc"], s["image_size"]) if s["arch"] == "dcgan" \
            else build_generator(s["nz"], s["nc"], s["net_capacity"], s["filter_size"])
    G.load_state_dict({k: v.detach().float().clone() for k, v in state.items()}, assign=True)
    return G


def average(netG, optimizerG, args):
    """--ema: a copy of G whose weights follow G's after each G step (an optimizer hook) with
    the decay min(ema, (1 + t) / (10 + t)) at step t (TensorFlow's warm-up); --ema 0: G."""
    if not args.ema:
        netG.steps = 0
        return netG
    G_ema = new_generator(vars(args), netG.state_dict()).requires_grad_(False)
    G_ema.steps, mine, theirs = 0, list(G_ema.parameters()), list(netG.parameters())

    def update(*_):  # Python numbers only: no host sync
        G_ema.steps += 1
        torch._foreach_lerp_(mine, theirs, 1 - min(args.ema, (1 + G_ema.steps) /
                                                   (10 + G_ema.steps)))
    optimizerG.register_step_post_hook(update)
    return G_ema


def sampling_copy(G, args, passes=16):
    """A new eval-mode G with G's weights, its batch-norm statistics recomputed from fresh
    noise: running ones lag behind the weights (grey images), and an exported G has no batch
    statistics. Plain float32, whatever --amp and --compile do to G."""
    g = new_generator(vars(args), G.state_dict())
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


def critic_norm(args):
    """D's normalisation: a WGAN-GP critic normalises each sample alone (its penalty is per
    sample; Gulrajani et al.), the others use the tutorial's batch norm."""
    return (lambda c: nn.GroupNorm(1, c)) if args.loss == "wgan-gp" else nn.BatchNorm2d


def wasserstein(output, label):
    """-E[D(x)] for real labels (1), E[D(G(z))] for fake ones (0): the critic's loss, and G's."""
    return -((2 * label - 1) * output).mean()


def hinge(output, label):
    """The hinge loss of D (Lim & Ye; Miyato et al.): relu(1 - D(x)) + relu(1 + D(G(z)))."""
    return torch.relu(1 - (2 * label - 1) * output).mean()


def losses(args, criterion):
    """(D's loss, G's loss, D's output as printed) for --loss: bce is the tutorial's criterion
    for both, D's output a probability; hinge gives G the Wasserstein loss; the Wasserstein
    losses print the critic's raw scores. --label-smoothing: D's real targets 1 - x."""
    if args.loss != "bce":
        return hinge if args.loss == "hinge" else wasserstein, wasserstein, lambda o: o
    smooth = 1 - args.label_smoothing
    D_loss = (lambda output, label: criterion(output, label * smooth)) if smooth < 1 else criterion
    return D_loss, criterion, torch.sigmoid


def critic_rules(args, netD, optimizerD):
    """WGAN: D's weights clipped after each of its steps (an optimizer hook). Returns
    penalty(real, fake): WGAN-GP's gradient penalty (Gulrajani et al. 2017), else 0."""
    if args.loss == "wgan":
        optimizerD.register_step_post_hook(lambda *_: [p.data.clamp_(
            -args.clip_value, args.clip_value) for p in netD.parameters()])

    def penalty(real, fake):
        if args.loss != "wgan-gp":
            return 0.0
        eps = torch.rand(real.size(0), 1, 1, 1, device=real.device)
        x_hat = (eps * real.float() + (1 - eps) * fake.float()).requires_grad_(True)
        # float32 for the double backward: the class's forward, without --amp's autocast; not
        # through DDP (which does not support autograd.grad): its gradients join errD_fake's
        grad, = torch.autograd.grad(type(netD).forward(netD, x_hat).sum(), x_hat,
                                    create_graph=True)
        return 10 * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()  # the paper's weight
    return penalty


def failure_signs(args, D_losses, fake_std, real_std, warned):
    """The article's failure signs, each warned about once: D wins, or samples collapse."""
    x, n = args.label_smoothing, min(200, max(8, len(D_losses) // 4))
    least = -(1 - x) * math.log(1 - x) - (x * math.log(x) if x else 0.0)  # BCE's, smoothed
    recent = D_losses[-n:]
    if args.loss == "bce" and len(recent) == n and max(recent) < least + 0.1 and "d" not in warned:
        warned.add("d")
        yield (f"Loss_D has been near its minimum for {n} iterations: D wins, G's gradients "
               f"vanish (flat or noisy samples). Early on this often passes (the tutorial's run "
               f"recovers by ~250); if not, try --lr-d 0.0001, --g-updates 2 or --loss wgan-gp")
    if len(D_losses) >= 100 and fake_std < 0.1 * real_std and "std" not in warned:
        warned.add("std")
        yield (f"samples are collapsing (pixel std over the batch {fake_std:.3f}, real images "
               f"{real_std:.3f}): mode collapse. Try --loss wgan-gp or --d-updates 2")


def save_progress_figure(G, netD, args, iters):
    """The article's progress figure: 8 fakes titled with D's score, in OUT/visualization/."""
    with torch.no_grad():
        fakes = sampling_copy(G, args)(torch.randn(8, args.nz, 1, 1, device=args.device))
        scores = losses(args, nn.BCEWithLogitsLoss())[2](
            type(netD).forward(netD.eval(), fakes).view(-1)).tolist()  # Keras' predict
    netD.train()
    fig, axes = plt.subplots(1, 8, figsize=(24, 3), subplot_kw=dict(xticks=[], yticks=[]))
    for ax, image, score in zip(axes, fakes.float().cpu() * 0.5 + 0.5, scores):
        ax.set_title(f"{score:.3f}")
        ax.imshow(image.clamp(0, 1).permute(1, 2, 0).squeeze().numpy(), cmap="gray")
    os.makedirs(os.path.join(args.out, "visualization"), exist_ok=True)
    fig.savefig(os.path.join(args.out, "visualization", f"{iters:010d}.jpg"), bbox_inches="tight")
    plt.close(fig)


# -- G. Evaluation: FID along the run and the best G kept, is it copying?, the run's health -----
FID_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's file name


def fid_check(args):
    """Before training: torch-fidelity is installed and its Inception weights load (a
    --fid-weights file of tensors only, or torch-fidelity's own download, done now). Returns
    its parts (fidelity()), which the measurements then use."""
    try:
        args.fid_weights and torch.load(args.fid_weights, weights_only=True)  # no code in it
        return fidelity(args)
    except Exception as e:
        fail(f"--fid needs torch-fidelity (pip install -r requirements-fid.txt) and its "
             f"Inception weights: downloaded at the first use, or --fid-weights {FID_WEIGHTS} "
             f"on a machine that cannot ({type(e).__name__})")


def fidelity(args):
    """torch-fidelity's parts (imported here: --fid only): its Inception feature extractor (or
    any registered under its name) and its FID, KID and Inception Score functions."""
    from torch_fidelity import metric_fid, metric_isc, metric_kid, utils
    extractor = utils.create_feature_extractor(  # offline: an OSError (see fid_check)
        "inception-v3-compat", ["2048", "logits_unbiased"], cuda=args.device.type == "cuda",
        verbose=False, feature_extractor_weights_path=args.fid_weights)
    return types.SimpleNamespace(fid=metric_fid, isc=metric_isc, kid=metric_kid, features=lambda x:
                                 utils.get_featuresdict_from_dataset(torch.utils.data.Subset(
                                     x, range(len(x))), extractor, 64, args.device.type == "cuda",
                                     True, False))


def measure(control, epoch, iters):
    """--fid N at an epoch's end (rank 0): FID, KID (unbiased at small N) and Inception Score of
    N samples of fixed noise against N fixed training images (theirs computed once a run, by
    torch-fidelity's own functions); a metrics.csv row, fid.png, OUT/best/ when it is the
    lowest FID so far. Returns the seconds it took."""
    args, t0, c = control.args, time.perf_counter(), control
    if not hasattr(c, "tf"):
        c.tf, c.real = args.fidelity, real_images(control.loader.dataset, args, args.fid)
    n, sampleG = len(c.real), sampling_copy(c.G_ema, args)
    c.fakes = samples_u8(sampleG, args, n)
    c.fake_f, c.fake_iters = c.tf.features(c.fakes), iters
    c.real_f = getattr(c, "real_f", None) or c.tf.features(c.real)  # once a run
    stats = lambda f: c.tf.fid.fid_featuresdict_to_statistics(f, "2048")  # noqa: E731
    fid = c.tf.fid.fid_statistics_to_metric(stats(c.fake_f), stats(c.real_f), False)[
        "frechet_inception_distance"]
    kid = c.tf.kid.kid_featuresdict_to_metric(c.fake_f, c.real_f, "2048", verbose=False,
                                              kid_subset_size=min(1000, n))[
        "kernel_inception_distance_mean"] if n > 1 else math.nan
    score = c.tf.isc.isc_featuresdict_to_metric(c.fake_f, "logits_unbiased", verbose=False,
                                                isc_splits=min(10, n))["inception_score_mean"]
    print(f"FID: {fid:.2f}, KID: {kid:.4f}, Inception Score: {score:.2f} ({n} samples against "
          f"{n} real images, epoch {epoch + 1}, {time.perf_counter() - t0:.0f} s)", flush=True)
    row = dict(epoch=epoch, iteration=iters, fid=round(fid, 3), kid=round(kid, 5),
               inception_score=round(score, 3))
    c.writer.writerow(row)
    c.fid.append({**row, "images": iters * args.batch_size})
    if not c.best or fid < c.best[1]:  # the generator of the lowest FID so far
        c.best[:] = [epoch + 1, fid]
        os.makedirs(os.path.join(args.out, "best"), exist_ok=True)
        export(sampleG, args, os.path.join(args.out, "best"))
        print(f"best so far: epoch {epoch + 1}, FID {fid:.1f}, kept in "
              f"{os.path.join(args.out, 'best')}")
    fid_figure(c.fid, args.out)
    return time.perf_counter() - t0


def fid_figure(rows, out):
    """fid.png: FID against iterations and against the images D has seen."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, key, name in zip(axes, ("iteration", "images"), ("iterations", "images seen")):
        ax.plot([r[key] for r in rows], [r["fid"] for r in rows], marker="o")
        ax.set_xlabel(name)
    axes[0].set_ylabel("FID (lower is better)")
    fig.savefig(os.path.join(out, "fid.png"), dpi=80, bbox_inches="tight")
    plt.close(fig)


def export(G, args, folder):
    """G's files in `folder`: generator.pt2 and generator_weights.pt (with what --generate
    --nearest needs: the run's folder, seed and held-out images)."""
    cpu = copy.deepcopy(G).cpu().to(memory_format=torch.contiguous_format)
    save_generator(cpu, (torch.randn(2, args.nz, 1, 1),), folder, SCRIPT,
                   {k: args.saved[k] for k in RUN_SETTINGS})


def samples_u8(G, args, n, seed=1):
    """n samples of G from seeded noise (the same every time), as uint8 RGB."""
    gen = torch.Generator(args.device).manual_seed(args.seed + seed)
    with torch.no_grad():
        return torch.cat([u8(G(torch.randn(len(k), args.nz, 1, 1, generator=gen,
                                           device=args.device)).cpu())
                          for k in torch.arange(n).split(500)])


def u8(x):
    """Images in [-1, 1] as uint8 RGB: what torch-fidelity's Inception takes."""
    return ((x.float() + 1) * 127.5).round().clamp(0, 255).byte().expand(-1, 3, -1, -1)


def real_images(dataset, args, n):
    """n of the dataset's readable images (a seeded choice), as uint8 RGB."""
    pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(args.seed))
    images = []
    for k in pick.tolist():
        x, bad = dataset[k]
        if not bad:
            images.append(u8(x[None])[0])
        if len(images) == n:
            break
    return torch.stack(images) if images else torch.zeros(0, 3, 1, 1, dtype=torch.uint8)


def quality_at_end(control, dataset, iters):
    """The run's last FID (if not measured at this point), then: is it copying?"""
    args = control.args
    if args.fid and getattr(control, "fake_iters", None) != iters:
        measure(control, control.epoch, iters)
    if args.fid:  # in Inception features: the last FID's samples and training images
        c = control
        known = {id(c.fakes): c.fake_f, id(c.real): c.real_f}  # no features computed twice
        embed = lambda x: (known.get(id(x)) or c.tf.features(x))["2048"]  # noqa: E731
        copying(args, os.path.join(args.out, "nearest.png"), control.fakes, control.real,
                real_images(args.held, args, len(control.real)), embed, "Inception features")
    else:
        copying(args, os.path.join(args.out, "nearest.png"),
                samples_u8(sampling_copy(control.G_ema, args), args, 500),
                real_images(dataset, args, 1000), real_images(args.held, args, 1000),
                lambda x: x.float().flatten(1), "pixels")


def copying(args, path, samples, train, held, embed, space):
    """nearest.png: 8 samples, each beside its 3 nearest training images; and the copying ratio
    (Meehan et al., AISTATS 2020): the median distance of the samples to their nearest training
    image over that to their nearest held-out one, in sets of the same size. About 1: no closer
    to the images it trained on than to unseen ones; below 1: copying."""
    s, t = embed(samples), embed(train)
    to_train = torch.cdist(s.float(), t.float())
    nearest = to_train[:8].topk(min(3, len(train)), largest=False).indices
    grid = torch.cat([torch.cat([samples[k:k + 1], train[nearest[k]]])
                      for k in range(min(8, len(s)))])
    vutils.save_image(grid.float() / 255, path, nrow=1 + nearest.shape[1], padding=2)
    print(f"{os.path.basename(path)}: samples (left) beside their nearest training images, in "
          f"{space}")
    if len(held) < 2:
        return print("note: no copying ratio: no images were held out of training (--holdout N)")
    size = min(len(held), len(train))
    sub = torch.randperm(len(train), generator=torch.Generator().manual_seed(args.seed))[:size]
    ratio = float(to_train[:, sub].min(1)[0].median() /
                  torch.cdist(s.float(), embed(held[:size]).float()).min(1)[0].median())
    verdict = "copying: the samples are closer to the training images than to unseen ones" \
        if ratio < 0.9 else "not copying" if ratio > 0.95 else "perhaps copying"
    print(f"copying ratio {ratio:.2f}: {verdict} (distance to the nearest of {size} training "
          f"images over that to the nearest of {size} held-out ones, in {space}; about 1: not "
          f"copying, below 1: copying)")


def fresh(base, exts):
    """base, or base-2, base-3 ...: a name no earlier file has (never over an earlier file)."""
    return next(b for b in (base + (f"-{k}" if k > 1 else "") for k in range(1, 10**6))
                if not any(os.path.exists(b + e) for e in exts))


def health(control, iters):
    """Two lines: does the run look healthy (D's outputs against the tutorial's run, the
    failure signs seen, the FID trend), and what to try next if not."""
    args, signs, fid = control.args, sorted(control.warned), control.fid
    best = f"{os.path.join(args.out, 'best')} keeps the lowest FID's generator" if args.fid \
        else "--fid N measures FID each epoch and keeps the best generator"
    trend = f"; FID {fid[0]['fid']:.1f} -> {fid[-1]['fid']:.1f}" if len(fid) > 1 else ""
    if args.loss != "bce" or not control.recent:
        return [f"health: no verdict from D's outputs ({args.loss} loss: scores, not "
                f"probabilities){trend}", f"next: see losses.png and the warnings above; {best}"]
    D_x, D_G_z = (float(np.median(v)) for v in zip(*control.recent))
    said = f"D(x) {D_x:.2f}, D(G(z)) {D_G_z:.2f} over the last log lines (the tutorial's late " \
        f"in training: D(x) ~0.5-0.9, D(G(z)) ~0.1-0.5)"
    wins, loses = D_x > 0.95 and D_G_z < 0.05, D_x < 0.4
    if iters * args.batch_size < 200000 and not (wins or signs):
        return [f"health: too early to judge ({said}){trend}", "next: train longer (--resume "
                f"{os.path.join(args.out, 'checkpoint.pt')} --epochs N)"]
    if not (wins or loses or signs) and not (len(fid) > 2 and fid[-1]["fid"] > 1.2 * min(
            r["fid"] for r in fid)):
        return [f"health: looks healthy: {said}; no failure signs{trend}",
                f"next: more epochs improve it; {best}"]
    why = "D wins (G's gradients vanish)" if wins else "D is losing (it cannot tell)" if \
        loses else "failure signs: " + ", ".join({"d": "D wins", "std": "mode collapse"}[s]
                                                  for s in signs) if signs else "FID rising"
    return [f"health: not healthy: {why}: {said}{trend}",
            f"next: try --lr-d 0.0001, --g-updates 2 or --loss wgan-gp; {best}"]


# -- H. Generate: samples of a saved generator, without training (its weights only) -------------
def generate(args):
    """G from a generator_weights.pt (weights only: no code runs), samples into a new folder."""
    saved = load_checkpoint(args.generate, SCRIPT)
    if "settings" not in saved:
        fail(f"{args.generate} is a checkpoint, for --resume; --generate reads the "
             f"generator_weights.pt beside it")
    device = pick_device(args.device)
    try:  # the flags' own checks: a tampered file cannot ask for absurd sizes
        with contextlib.redirect_stderr(open(os.devnull, "w")):
            s = vars(parse_args([f"--{k.replace('_', '-')}={saved['settings'][k]}"
                                 for k in GENERATOR_SETTINGS]))
        state = saved["state_dict"]
        if not all(torch.is_tensor(v) and v.layout == torch.strided and not v.is_meta
                   for v in state.values()):
            raise TypeError("not plain tensors")
        netG = new_generator(s, state).to(device).eval()  # its batch-norm statistics: saved
    except (SystemExit, KeyError, TypeError, ValueError, RuntimeError, AttributeError):
        fail(f"{args.generate} holds settings or weights this script cannot build; pass a "
             f"generator_weights.pt written by {SCRIPT}.py")
    torch.manual_seed(args.seed)
    print(f"Random Seed:  {args.seed}\ndevice: {device}")
    noise = torch.randn(args.num_samples, s["nz"], 1, 1)
    nrow, name = int(args.num_samples ** 0.5), "generated"
    if args.interpolate:  # row r: from sample r of a plain --generate of 2R samples to its R + r
        rows, nrow, name = max(1, args.num_samples // args.interpolate), args.interpolate, \
            "interpolation"
        torch.manual_seed(args.seed)
        a, b = torch.randn(2 * rows, s["nz"], 1, 1).flatten(1).split(rows)
        t, omega = torch.linspace(0, 1, nrow).view(1, -1, 1), torch.acos(
            (nn.functional.normalize(a, dim=1) * nn.functional.normalize(b, dim=1)).sum(1)
            .clamp(-1, 1)).view(-1, 1, 1).clamp_min(1e-6)  # slerp: on the sphere's great circle
        noise = (torch.sin((1 - t) * omega) * a[:, None] + torch.sin(t * omega) * b[:, None]) / \
            torch.sin(omega)
        noise = noise.flatten(0, 1)[..., None, None]
    with torch.no_grad():
        fake = netG(noise.to(device)).cpu()
    out = generate_out(args.out, args.generate)
    prepare_out(out, new_run=False, hold=False)
    names = [os.path.join(out, n) for n in ("generated.png", "generated.pt")]
    if not args.interpolate and any(map(os.path.exists, names)) and not args.overwrite:
        fail(f"--out {out} holds an earlier generated.png; pass a new --out, or --overwrite")
    with prepare_out(out, new_run=False):  # holds --out while writing
        if args.interpolate:  # never over an earlier file
            names = [fresh(os.path.join(out, name), (".png", ".pt")) + e for e in (".png", ".pt")]
        vutils.save_image(fake, names[0], padding=2, normalize=True, value_range=(-1, 1),
                          nrow=nrow)
        atomic_save(fake, names[1])  # the images, for your tools
        print(f"wrote {names[0]} and {os.path.basename(names[1])} ({tuple(fake.shape)}, in "
              f"[-1, 1])")
        if args.nearest:
            nearest_of(fake, s, saved["settings"], args, device, out)
    return 0


def nearest_of(fake, s, settings, args, device, out):
    """--generate --nearest: nearest.png and the copying ratio of these samples against the
    run's own folder (named in the weights file), split as it was for training."""
    root = settings.get("dataroot", args.dataroot)
    run = types.SimpleNamespace(seed=settings.get("seed", args.seed), holdout=settings.get(
        "holdout", 0), saved={}, nz=s["nz"], device=device, fid=args.fid,
        fid_weights=args.fid_weights)
    dataset = FolderOfImages(root, transforms.Compose(
        [transforms.Resize(s["image_size"]), transforms.CenterCrop(s["image_size"]),
         transforms.ToTensor(), transforms.Normalize((0.5,) * s["nc"], (0.5,) * s["nc"])]
        + [transforms.Grayscale()] * (s["nc"] == 1)))
    held = hold_out(dataset, run, say=False)
    n, tf = args.fid or 1000, fid_check(run) if args.fid else None
    embed = (lambda x: tf.features(x)["2048"]) if args.fid else (lambda x: x.float().flatten(1))
    copying(run, fresh(os.path.join(out, "nearest"), (".png",)) + ".png",
            u8(fake), real_images(dataset, run, n),
            real_images(held, run, n), embed, "Inception features" if args.fid else "pixels")


if __name__ == "__main__":
    sys.exit(run(main))
