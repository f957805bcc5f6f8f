"""dcgan_celeba.py's advanced topics ("Comprehensive Introduction to Turing Learning and GANs,
Part 2"): its Keras CelebA model, the losses (WGAN with clipping, WGAN-GP, hinge), its knobs,
failure warnings and progress figures, and FID with the Inception Score by torch-fidelity."""
import argparse
import math
import os

import pytest
import torch

import dcgan_celeba
import helpers
from helpers import CELEBA_SMALL as SMALL, celeba, ckpt, make_image_folder, rows




def test_the_keras_model_has_its_parameter_counts_and_shapes_64_in_64_out():
    netG = dcgan_celeba.build_generator(100, 3, 16, 5)
    netD = dcgan_celeba.build_discriminator(3, 16, 5)
    # trainable parameters of the article's Keras models (NET_CAPACITY 16, FILTER_SIZE 5):
    # G: Dense 100*2048+2048, BN 2*2048, Deconv 25*128*64+64, BN 128, 25*64*32+32, BN 64,
    #    25*32*16+16, BN 32, 25*16*16+16, BN 32, Conv 25*16*3+3
    assert sum(p.numel() for p in netG.parameters()) == 487731
    # D: per block Conv + BN + Conv(stride 2) + BN, filters 16, 32, 64, 128; Dense 128+1
    assert sum(p.numel() for p in netD.parameters()) == 815569
    sizes = []
    for m in [*netG.modules(), *netD.modules()]:
        if isinstance(m, torch.nn.LeakyReLU):
            assert m.negative_slope == pytest.approx(0.3)  # Keras' LeakyReLU default
            m.register_forward_hook(lambda mod, i, o: sizes.append(tuple(o.shape[1:])))
    fake = netG(torch.randn(2, 100, 1, 1))
    assert fake.shape == (2, 3, 64, 64) and fake.abs().max() <= 1
    assert netD(fake).shape == (2, 1)
    assert sizes == [(64, 8, 8), (32, 16, 16), (16, 32, 32), (16, 64, 64),   # G's decoder
                     (16, 32, 32), (32, 16, 16), (64, 8, 8), (128, 4, 4)]    # D's encoder
    for m in [*netG.modules(), *netD.modules()]:  # Keras' initialisation: zero biases
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            assert not m.bias.any()


def test_each_loss_prints_its_textbook_values(tmp_path):
    """Through metrics.csv: WGAN's critic loss is -D(x) + D(G(z)) and G's is -D(G(z)) (raw
    critic scores, not probabilities); hinge gives G the same loss; bce prints probabilities."""
    data = make_image_folder(tmp_path / "celeba", n=8, size=40)
    for loss in ("bce", "hinge", "wgan"):
        out = tmp_path / loss
        assert celeba("--dataroot", data, *SMALL, "--batch-size", 4, "--epochs", 1,
                          "--log-every", 1, "--loss", loss, "--d-updates", 1, "--lr", 0.01,
                          "--out", out) == 0
        for r in rows(out / "metrics.csv"):
            d_x, d_gz1, d_gz2 = (float(r[k]) for k in ("d_x", "d_g_z1", "d_g_z2"))
            if loss == "wgan":
                assert float(r["loss_d"]) == pytest.approx(-d_x + d_gz1, abs=1e-4), r
            if loss != "bce":
                assert float(r["loss_g"]) == pytest.approx(-d_gz2, abs=1e-4), r
            else:  # the tutorial's probabilities, and its BCE of them
                assert 0 < d_x < 1 and 0 < d_gz1 < 1 and 0 < d_gz2 < 1, r
                assert float(r["loss_g"]) > 0 and float(r["loss_d"]) > 0, r
    wgan = [float(r["d_x"]) for r in rows(tmp_path / "wgan" / "metrics.csv")]
    assert any(not 0 <= v <= 1 for v in wgan) or len(set(wgan)) > 1  # raw scores


def critic_setup(loss, critic, lr=1e-3):
    args = argparse.Namespace(loss=loss, clip_value=0.01)
    optimizer = torch.optim.Adam(critic.parameters(), lr=lr)
    return dcgan_celeba.critic_rules(args, critic, optimizer), optimizer


def test_gradient_penalty_matches_hand_computed_values_and_trains_the_critic():
    x = torch.randn(3, 1, 2, 2)
    # a linear critic D(x) = w.x + b has gradient w everywhere: GP = 10 * (||w|| - 1)^2 = 160
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1))
    with torch.no_grad():
        linear[1].weight.copy_(torch.tensor([[3.0, 4.0, 0.0, 0.0]]))
    penalty, _ = critic_setup("wgan-gp", linear)
    gp = penalty(x, torch.randn(3, 1, 2, 2))
    assert gp.item() == pytest.approx(160.0)
    gp.backward()  # joined to D's loss in the loop: d/dw 10 (||w|| - 1)^2 = 16 w
    assert torch.allclose(linear[1].weight.grad, torch.tensor([[48.0, 64.0, 0.0, 0.0]]))

    class Square(torch.nn.Module):  # D(x) = sum(x^2): gradient 2 x_hat; real == fake: x_hat = x
        def __init__(self):
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(1))  # for its optimizer

        def forward(self, x):
            return (x ** 2).flatten(1).sum(1)
    penalty, _ = critic_setup("wgan-gp", Square())
    expected = 10.0 * ((2 * x.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert penalty(x, x.clone()).item() == pytest.approx(expected.item(), rel=1e-5)
    for loss in ("bce", "hinge", "wgan"):  # no penalty for the others
        penalty, _ = critic_setup(loss, torch.nn.Sequential(torch.nn.Flatten(),
                                                            torch.nn.Linear(4, 1)))
        assert penalty(x, x) == 0


def test_wgan_clips_the_critics_weights_after_each_of_its_steps_and_nothing_else_does():
    for loss in ("wgan", "wgan-gp", "bce"):
        torch.manual_seed(0)
        critic = dcgan_celeba.Discriminator(1, 3, 8, 32)
        _, optimizer = critic_setup(loss, critic, lr=0.5)
        critic(torch.randn(4, 3, 32, 32)).mean().backward()
        optimizer.step()
        top = max(p.abs().max().item() for p in critic.parameters())
        assert (top <= 0.01) == (loss == "wgan"), (loss, top)


def test_label_smoothing_changes_only_ds_real_targets(tmp_path, monkeypatch):
    data = make_image_folder(tmp_path / "celeba", n=8, size=40)
    targets = []
    forward = torch.nn.BCEWithLogitsLoss.forward  # torch's own loss, watched

    def watched(self, output, target):
        targets.append(sorted({round(v, 6) for v in target.tolist()}))
        return forward(self, output, target)
    monkeypatch.setattr(torch.nn.BCEWithLogitsLoss, "forward", watched)
    assert celeba("--dataroot", data, *SMALL, "--batch-size", 4, "--dry-run",
                      "--label-smoothing", 0.1, "--out", tmp_path / "o") == 0
    assert targets[:3] == [[0.9], [0.0], [1.0]]  # D: real 0.9, fake 0; G's targets stay 1


PUBLISHED = {"bce": (2e-4, 0.5, 0.999), "hinge": (2e-4, 0.5, 0.999),
             "wgan": (5e-5, 0.0, 0.9), "wgan-gp": (1e-4, 0.0, 0.9)}  # lr, beta1, beta2


@pytest.mark.parametrize("arch,loss", [("dcgan", "wgan"), ("dcgan", "wgan-gp"), ("dcgan", "hinge"),
                                       ("encoder-decoder", "bce"),
                                       ("encoder-decoder", "wgan-gp")])
def test_each_arch_and_loss_trains_a_tiny_epoch_and_writes_its_outputs(tmp_path, capsys, arch,
                                                                       loss):
    data = make_image_folder(tmp_path / "celeba", n=8, size=40)
    size = 64 if arch == "encoder-decoder" else 32
    out = tmp_path / "run"
    assert celeba("--dataroot", data, "--workers", 0, "--arch", arch, "--loss", loss,
                      "--batch-size", 4, "--log-every", 1, "--ngf", 8, "--ndf", 8,
                      "--net-capacity", 4, "--image-size", size, "--out", out, "--epochs", 1,
                      "--d-updates", 2, "--g-updates", 2, "--lr-d", 4e-4) == 0
    printed = capsys.readouterr()
    assert "Traceback" not in printed.err
    arguments = printed.out.splitlines()[0]
    lr, beta1, beta2 = PUBLISHED[loss]
    if arch == "encoder-decoder" and not loss.startswith("wgan"):
        beta1 = 0.9  # the article's Adam
    assert f"--lr {lr:g} --beta1 {beta1}" in arguments and f"--beta2 {beta2}" in arguments
    assert "--d-updates 2 --g-updates 2" in arguments  # the given values win
    c = ckpt(out / "checkpoint.pt")
    assert c["optimizerD"]["param_groups"][0]["lr"] == 4e-4
    assert c["optimizerG"]["param_groups"][0]["lr"] == pytest.approx(lr)
    assert c["optimizerG"]["param_groups"][0]["betas"] == (beta1, beta2)
    assert c["scaler"] == {}  # the GradScaler acts under --amp fp16 only
    if loss == "wgan-gp":  # the critic has no batch norm (no running statistics), G has
        assert not any("running_mean" in k for k in c["netD"])
        assert any("running_mean" in k for k in c["netG"])
    if loss == "wgan":  # every weight of the critic clipped to [-0.01, 0.01]
        assert max(v.abs().max().item() for k, v in c["netD"].items()
                   if "running" not in k and v.is_floating_point()) <= 0.01
    # --d-updates 2: G's first steps come at the second iteration
    assert c["G_losses"][0] == 0 and c["G_losses"][1] != 0
    assert all(math.isfinite(x) for x in c["G_losses"] + c["D_losses"])
    metrics = rows(out / "metrics.csv")
    assert [int(r["iteration"]) for r in metrics] == [0, 1]
    assert all(float(r["fake_std"]) > 0 for r in metrics)
    g = torch.export.load(str(out / "generator.pt2")).module()
    assert g(torch.randn(3, 100, 1, 1)).shape == (3, 3, size, size)
    if arch == "encoder-decoder":  # the article's progress figure, at stats lines
        assert sorted(os.listdir(out / "visualization")) == ["0000000000.jpg", "0000000001.jpg"]
    else:
        assert not (out / "visualization").exists()


def test_wgan_gp_with_d_updates_resumes_exactly(tmp_path):
    data = make_image_folder(tmp_path / "celeba", n=8, size=40)
    flags = ["--dataroot", data, *SMALL, "--batch-size", 4, "--loss", "wgan-gp",
             "--d-updates", 2]
    a, b = tmp_path / "a", tmp_path / "b"
    assert celeba(*flags, "--out", a, "--epochs", 2, "--checkpoint-every", 1) == 0
    assert celeba(*flags, "--out", b, "--epochs", 2, "--dry-run") == 0  # stops mid-epoch
    assert celeba("--resume", b / "checkpoint.pt") == 0
    ca, cb = ckpt(a / "checkpoint.pt"), ckpt(b / "checkpoint.pt")
    for part in ("netG", "netD"):
        for k in ca[part]:
            assert torch.equal(ca[part][k], cb[part][k]), (part, k)
    for part in ("optimizerG", "optimizerD"):
        for k, state in ca[part]["state"].items():
            for name in state:
                assert torch.equal(state[name], cb[part]["state"][k][name]), (part, k, name)
    assert ca["D_losses"] == cb["D_losses"] and len(ca["D_losses"]) == 4
    assert ca["G_losses"] == cb["G_losses"]


def test_failure_signs_warn_once_about_d_winning_even_early_and_about_collapse():
    signs = dcgan_celeba.failure_signs
    args = dcgan_celeba.parse_args([])
    assert list(signs(args, [1.2] * 500, 0.4, 0.5, set())) == []  # a healthy run: nothing
    warned = set()
    assert list(signs(args, [0.001] * 7, 0.4, 0.5, warned)) == []  # too few to tell
    first = list(signs(args, [0.001] * 8, 0.4, 0.5, warned))  # a short run is warned too
    assert len(first) == 1 and "D wins" in first[0] and "--lr-d" in first[0]
    assert list(signs(args, [0.001] * 300, 0.4, 0.5, warned)) == []  # once only
    warned = set()
    assert list(signs(args, [1.0] * 99, 0.01, 0.5, warned)) == []  # collapse: 100 iterations
    collapsed = list(signs(args, [1.0] * 100, 0.01, 0.5, warned))
    assert len(collapsed) == 1 and "collaps" in collapsed[0] and "--loss wgan-gp" in collapsed[0]
    assert list(signs(args, [1.0] * 200, 0.01, 0.5, warned)) == []  # once only
    # with smoothing 0.1, D's BCE cannot go below ~0.325: sitting there is the same sign
    assert list(signs(args, [0.33] * 10, 0.4, 0.5, set())) == []
    smooth = dcgan_celeba.parse_args(["--label-smoothing", "0.1"])
    assert len(list(signs(smooth, [0.33] * 10, 0.4, 0.5, set()))) == 1
    assert list(signs(smooth, [0.6] * 10, 0.4, 0.5, set())) == []
    # a WGAN critic's loss has no floor to sit at
    critic = dcgan_celeba.parse_args(["--loss", "wgan-gp"])
    assert list(signs(critic, [0.0] * 50, 0.4, 0.5, set())) == []


def test_fid_and_inception_score_rows_by_torch_fidelity_writing_nothing_elsewhere(
        tmp_path, monkeypatch, capsys):
    registry = pytest.importorskip("torch_fidelity.registry", reason="torch-fidelity is "
                                   "optional (requirements-fid.txt)")
    stand_in = helpers.tiny_inception()
    monkeypatch.setitem(registry.FEATURE_EXTRACTORS_REGISTRY, "inception-v3-compat", stand_in)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    data = make_image_folder(tmp_path / "celeba", n=40, size=40)
    out = tmp_path / "o"
    assert celeba("--dataroot", data, *SMALL, "--batch-size", 8, "--epochs", 1,
                      "--fid", 40, "--out", out) == 0
    printed = capsys.readouterr().out
    assert printed.count("FID: ") == 1 and "Inception Score: " in printed
    fakes, reals = stand_in.calls  # torch-fidelity's order: input1, then input2
    assert fakes.shape == reals.shape == (40, 3, 32, 32)
    folder = torch.stack([dcgan_celeba.transforms.PILToTensor()(dcgan_celeba.transforms.Compose(
        [dcgan_celeba.transforms.Resize(32), dcgan_celeba.transforms.CenterCrop(32)])(
        dcgan_celeba.Image.open(os.path.join(data, "img_align_celeba", f)).convert("RGB")))
        for f in sorted(os.listdir(os.path.join(data, "img_align_celeba")))])
    assert all((folder == r).flatten(1).all(1).any() for r in reals)  # the real images
    assert len({r.numpy().tobytes() for r in reals}) == 40  # each once
    assert not any((folder == f).flatten(1).all(1).any() for f in fakes)  # G's samples
    stand_in.calls.clear()  # the script's figures are torch-fidelity's own on those images
    import torch_fidelity
    m = torch_fidelity.calculate_metrics(input1=torch.utils.data.Subset(fakes, range(40)),
                                         input2=torch.utils.data.Subset(reals, range(40)), fid=True,
                                         isc=True, verbose=False, cuda=False)
    scored = [r for r in rows(out / "metrics.csv") if r["fid"]]
    assert len(scored) == 1 and scored[0]["loss_d"] == ""  # blanks, never stale values
    assert (scored[0]["epoch"], scored[0]["iteration"]) == ("0", "5")
    assert float(scored[0]["fid"]) == pytest.approx(m["frechet_inception_distance"], abs=1e-3)
    assert float(scored[0]["inception_score"]) == pytest.approx(m["inception_score_mean"],
                                                                abs=1e-3)
    assert f"FID: {m['frechet_inception_distance']:.2f}" in printed
    # torch-fidelity's calculate_metrics, its own cache off: nothing written outside --out
    assert not (tmp_path / "cache").exists() and not (tmp_path / "torch_home").exists()
