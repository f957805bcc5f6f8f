"""dcgan_celeba.py's advanced topics ("Comprehensive Introduction to Turing Learning and GANs,
Part 2"): its Keras CelebA model, the losses (WGAN with clipping, WGAN-GP, hinge), its knobs,
failure warnings and progress figures, and FID with the Inception Score."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

import common
import dcgan_celeba
import helpers
from helpers import ckpt, make_image_folder, rows


def in_process(*args):
    return helpers.in_process(dcgan_celeba.main, *args)


def test_the_keras_model_has_its_parameter_counts_and_shapes_64_in_64_out():
    netG = dcgan_celeba.DecoderGenerator(16, 5, 100, 3)
    netD = dcgan_celeba.EncoderDiscriminator(16, 5, 3)
    # trainable parameters of the article's Keras models (NET_CAPACITY 16, FILTER_SIZE 5):
    # G: Dense 100*2048+2048, BN 2*2048, Deconv 25*128*64+64, BN 128, 25*64*32+32, BN 64,
    #    25*32*16+16, BN 32, 25*16*16+16, BN 32, Conv 25*16*3+3
    assert sum(p.numel() for p in netG.parameters()) == 487731
    # D: per block Conv + BN + Conv(stride 2) + BN, filters 16, 32, 64, 128; Dense 128+1
    assert sum(p.numel() for p in netD.parameters()) == 815569
    sizes = []
    for m in [*netG.main, *netD.main]:
        if isinstance(m, torch.nn.LeakyReLU):
            m.register_forward_hook(lambda mod, i, o: sizes.append(tuple(o.shape[1:])))
    fake = netG(torch.randn(2, 100, 1, 1))
    assert fake.shape == (2, 3, 64, 64) and fake.abs().max() <= 1
    assert netD(fake).shape == (2, 1)
    assert sizes == [(64, 8, 8), (32, 16, 16), (16, 32, 32), (16, 64, 64),   # G's decoder
                     (16, 32, 32), (32, 16, 16), (64, 8, 8), (128, 4, 4)]    # D's encoder


def test_gradient_penalty_matches_hand_computed_values():
    x = torch.randn(3, 1, 2, 2)
    # a linear critic D(x) = w.x + b has gradient w everywhere: GP = 10 * (||w|| - 1)^2 = 160
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1))
    with torch.no_grad():
        linear[1].weight.copy_(torch.tensor([[3.0, 4.0, 0.0, 0.0]]))
    gp = dcgan_celeba.gradient_penalty(linear, x, torch.randn(3, 1, 2, 2), 10.0)
    assert gp.item() == pytest.approx(160.0)
    # and it trains D: d/dw 10 (||w|| - 1)^2 = 20 (||w|| - 1) w / ||w|| = 16 w
    gp.backward()
    assert torch.allclose(linear[1].weight.grad, torch.tensor([[48.0, 64.0, 0.0, 0.0]]))

    class Square(torch.nn.Module):  # D(x) = sum(x^2): gradient 2 x_hat; real == fake: x_hat = x
        def forward(self, x):
            return (x ** 2).flatten(1).sum(1)
    expected = 2.0 * ((2 * x.flatten(1).norm(dim=1) - 1) ** 2).mean()
    gp = dcgan_celeba.gradient_penalty(Square(), x, x.clone(), 2.0)
    assert gp.item() == pytest.approx(expected.item(), rel=1e-5)


def test_loss_table_gives_each_losss_textbook_values():
    out, real, fake = torch.tensor([2.0, -1.0]), torch.ones(2), torch.zeros(2)
    L = dcgan_celeba.LOSSES
    assert L["wgan"][0](out, real).item() == pytest.approx(-0.5)   # -E[D(x)]
    assert L["wgan"][0](out, fake).item() == pytest.approx(0.5)    # E[D(G(z))]
    assert L["hinge"][0](out, real).item() == pytest.approx(1.0)   # mean(relu(1 - D(x)))
    assert L["hinge"][0](out, fake).item() == pytest.approx(1.5)   # mean(relu(1 + D(G(z))))
    assert L["hinge"][1](out, real).item() == pytest.approx(-0.5)  # G: -E[D(G(z))]
    expected = torch.nn.BCELoss()(torch.sigmoid(out), real)       # the tutorial's criterion
    assert L["bce"][0](out, real).item() == pytest.approx(expected.item(), rel=1e-6)


def test_label_smoothing_changes_only_ds_real_targets(tmp_path, monkeypatch):
    data = make_image_folder(tmp_path / "celeba", n=8, size=40)
    seen = {"D": set(), "G": set()}
    bce = dcgan_celeba.bce

    def spy(who):
        def criterion(output, label):
            seen[who].update(round(v, 6) for v in label.tolist())
            return bce(output, label)
        return criterion
    monkeypatch.setitem(dcgan_celeba.LOSSES, "bce", (spy("D"), spy("G")))
    assert in_process("--dataroot", data, "--image-size", 32, "--batch-size", 4, "--workers", 0,
                      "--ngf", 8, "--ndf", 8, "--dry-run", "--label-smoothing", 0.1,
                      "--out", tmp_path / "o") == 0
    assert seen == {"D": {0.9, 0.0}, "G": {1.0}}


@pytest.mark.parametrize("arch,loss", [("dcgan", "wgan"), ("dcgan", "wgan-gp"), ("dcgan", "hinge"),
                                       ("encoder-decoder", "bce"),
                                       ("encoder-decoder", "wgan-gp")])
def test_each_arch_and_loss_trains_a_tiny_epoch_and_writes_its_outputs(tmp_path, capsys, arch,
                                                                       loss):
    data = make_image_folder(tmp_path / "celeba", n=8, size=40)
    size = 64 if arch == "encoder-decoder" else 32
    out = tmp_path / "run"
    assert in_process("--dataroot", data, "--workers", 0, "--arch", arch, "--loss", loss,
                      "--batch-size", 4, "--log-every", 1, "--ngf", 8, "--ndf", 8,
                      "--net-capacity", 4, "--image-size", size, "--out", out, "--epochs", 1,
                      "--d-updates", 2, "--g-updates", 2, "--lr-d", 4e-4, "--lr-g", 1e-4,
                      "--noise", "uniform") == 0
    printed = capsys.readouterr().out
    if loss in ("wgan", "wgan-gp"):
        assert "defaults implied by" in printed and "--beta1 0.0 --beta2 0.9" in printed
        assert "\tW: " in printed and "D(x)" not in printed  # the critic's estimate instead
    c = ckpt(out / "checkpoint.pt")
    if loss == "wgan-gp":  # the critic has no batch norm (no running statistics), G has
        assert not any("running_mean" in k for k in c["netD"])
        assert any("running_mean" in k for k in c["netG"])
    assert c["optimizerD"]["param_groups"][0]["lr"] == 4e-4
    assert c["optimizerG"]["param_groups"][0]["lr"] == 1e-4
    if loss == "wgan":  # every weight of the critic clipped to [-0.01, 0.01]
        assert max(v.abs().max().item() for k, v in c["netD"].items()
                   if "running" not in k and v.is_floating_point()) <= 0.01
    metrics = rows(out / "metrics.csv")
    assert len(metrics) == 2 and all(float(r["grad_norm_d"]) > 0 for r in metrics)
    assert float(metrics[-1]["grad_norm_g"]) > 0 and float(metrics[-1]["fake_std"]) > 0
    g = torch.export.load(str(out / "generator.pt2")).module()
    assert g(torch.rand(3, 100, 1, 1) * 2 - 1).shape == (3, 3, size, size)
    if arch == "encoder-decoder":  # the article's progress figures, in its configuration folder
        name = "gan_cap4_batch4_filt5_disc2_gen2" + ("" if loss == "bce" else "_" + loss)
        assert os.listdir(out / "visualization" / name) == ["0000000000.jpg"]


def test_wgan_small_init_starts_inside_the_clip_range():
    netD = dcgan_celeba.Discriminator(1, 3, 8, 64).apply(dcgan_celeba.weights_init)
    netD.apply(dcgan_celeba.small_init(0.02))  # as the script does for --loss wgan
    w = torch.cat([m.weight.flatten() for m in netD.modules() if isinstance(m, torch.nn.Conv2d)])
    assert 0.005 < w.std() < 0.015 and (w.abs() <= 0.02).float().mean() > 0.9


def test_wgan_gp_with_d_updates_resumes_exactly(tmp_path):
    data = make_image_folder(tmp_path / "celeba", n=12, size=40)
    flags = ["--dataroot", data, "--image-size", 32, "--batch-size", 4, "--workers", 0,
             "--ngf", 8, "--ndf", 8, "--loss", "wgan-gp", "--d-updates", 2]
    a, b = tmp_path / "a", tmp_path / "b"
    assert in_process(*flags, "--out", a, "--epochs", 2, "--checkpoint-every", 1) == 0
    assert in_process(*flags, "--out", b, "--epochs", 2, "--dry-run") == 0
    assert in_process("--resume", b / "checkpoint.pt") == 0
    ca, cb = ckpt(a / "checkpoint.pt"), ckpt(b / "checkpoint.pt")
    for k in ca["netG"]:
        assert torch.equal(ca["netG"][k], cb["netG"][k]), k
    for k in ca["netD"]:
        assert torch.equal(ca["netD"][k], cb["netD"][k]), k
    assert ca["D_losses"] == cb["D_losses"] and len(ca["D_losses"]) == 6


def test_failure_watch_warns_once_about_vanishing_gradients_and_collapse():
    args = dcgan_celeba.parse_args([])
    watch = dcgan_celeba.FailureWatch(args, patience=100)
    assert watch.update([1.2] * 500, 0.4, 0.5) == []  # a healthy run: nothing
    assert watch.update([0.001] * 99, 0.4, 0.5) == []
    first = watch.update([0.001], 0.4, 0.5)
    assert len(first) == 1 and "vanish" in first[0] and "--lr-d" in first[0]
    assert watch.update([0.001] * 300, 0.4, 0.5) == []  # once only
    collapsed = watch.update([1.0] * 100, 0.01, 0.5)
    assert len(collapsed) == 1 and "collaps" in collapsed[0] and "--loss wgan-gp" in collapsed[0]
    # with smoothing 0.1, D's BCE cannot go below ~0.325: sitting there is the same sign
    smooth = dcgan_celeba.FailureWatch(dcgan_celeba.parse_args(["--label-smoothing", "0.1"]),
                                       patience=10)
    assert smooth.update([0.33] * 10, 0.4, 0.5) and not smooth.update([0.33] * 10, 0.4, 0.5)
    # a WGAN critic's loss has no floor to sit at
    critic = dcgan_celeba.FailureWatch(dcgan_celeba.parse_args(["--loss", "wgan-gp"]),
                                       patience=10)
    assert critic.update([0.0] * 50, 0.4, 0.5) == []


class TinyInception(torch.nn.Module):
    """A stand-in for torch-fidelity's InceptionV3 with its calling convention (uint8 images
    in, a tuple of pool features and logits out), buildable offline: its weights cannot be
    downloaded here."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 4, 4), torch.nn.ReLU(),
                                       torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())
        self.logits = torch.nn.Linear(32, 10)

    def forward(self, x):
        assert x.dtype == torch.uint8 and x.shape[1] == 3
        features = self.net(x.float() / 255)
        return features, self.logits(features)


def test_fid_and_inception_score_rows_every_epoch_and_real_vs_real_is_zero(tmp_path,
                                                                           monkeypatch, capsys):
    data = make_image_folder(tmp_path / "celeba", n=40, size=40)
    monkeypatch.setattr(dcgan_celeba, "fid_extractor", lambda args, device: TinyInception())
    out = tmp_path / "o"
    assert in_process("--dataroot", data, "--image-size", 32, "--batch-size", 8, "--workers", 0,
                      "--ngf", 8, "--ndf", 8, "--epochs", 2, "--fid", 40, "--fid-every", 1,
                      "--out", out) == 0
    assert capsys.readouterr().out.count("FID: ") == 2
    scored = [r for r in rows(out / "metrics.csv") if r["fid"]]
    fids = [float(r["fid"]) for r in scored]
    assert len(fids) == 2 and all(np.isfinite(fids)) and min(fids) > 0
    assert all(1 <= float(r["inception_score"]) <= 10 for r in scored)  # 10 classes here
    assert all(r["loss_d"] == "" for r in scored)  # blanks, never stale values
    folder = os.path.join(data, "img_align_celeba")
    images = torch.from_numpy(np.stack([np.asarray(Image.open(os.path.join(folder, p))
                                                   .resize((32, 32)))
                                        for p in sorted(os.listdir(folder))])).permute(0, 3, 1, 2)
    cpu = torch.device("cpu")
    feats = dcgan_celeba.inception_features(TinyInception(), images.split(16), cpu)[0]
    other = dcgan_celeba.inception_features(TinyInception(), images.flip(0).split(7), cpu)[0]
    stats = common.gaussian_stats(feats)
    assert common.frechet_distance(*stats, *stats) == pytest.approx(0.0, abs=1e-6)
    # batching changes nothing
    assert max(fids) > 10 * common.frechet_distance(*stats, *common.gaussian_stats(other))


def test_frechet_distance_matches_torch_fidelitys():
    metric_fid = pytest.importorskip("torch_fidelity.metric_fid",
                                     reason="torch-fidelity is optional (requirements-fid.txt)")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 16)), rng.normal(0.3, 1.5, size=(300, 16))
    ours = common.frechet_distance(*common.gaussian_stats(a), *common.gaussian_stats(b))
    theirs = metric_fid.fid_statistics_to_metric(
        metric_fid.fid_features_to_statistics(torch.from_numpy(a)),
        metric_fid.fid_features_to_statistics(torch.from_numpy(b)),
        verbose=False)["frechet_inception_distance"]
    assert ours == pytest.approx(theirs, rel=1e-6)


def test_inception_score_matches_torch_fidelitys():
    metric_isc = pytest.importorskip("torch_fidelity.metric_isc",
                                     reason="torch-fidelity is optional (requirements-fid.txt)")
    logits = torch.randn(500, 1008, generator=torch.Generator().manual_seed(0)) * 3
    theirs = metric_isc.isc_features_to_metric(logits)["inception_score_mean"]
    assert dcgan_celeba.inception_score(logits) == pytest.approx(theirs, rel=1e-9)
