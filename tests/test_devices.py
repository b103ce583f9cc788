"""Devices and random generators (#23). The rule (sdrlib.utils): a random draw is made on its generator's device and
the numbers are then moved to where they are used. The first CUDA run broke it: a CPU generator met CUDA images in
``noise.add_noise`` and ``sdr train --device cuda`` stopped at its first evaluation.

CI has no GPU, so every test but the last few simulates a mismatch on the CPU. ``strict_draws`` (on for this whole
file) makes torch's random functions refuse a generator on another device than the numbers asked for, as CUDA does
and as the CPU and ``meta`` do not. Then each half of a mismatch is provoked:
- data elsewhere: the model and images on ``meta`` with the library's CPU generators; a meta run cannot read a
  value back, so such a run must get to its first read-back (its draws and device moves all done before it);
- generators elsewhere: every generator made during the test says it lives on another device (``meta``) while the
  data stay on the CPU; the functions then run for real, and must give the numbers they give without the pretence.
The CUDA tests at the end run the same paths on a GPU when there is one (``scripts/gpu_check.py`` runs them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sdrlib import checkpoints, distributed, evaluate, noise, representation, sampling, targets, trainstate, utils
from sdrlib import train as train_mod
from sdrlib.unet import build

ROOT = Path(__file__).resolve().parent.parent
ELSEWHERE = torch.device("meta")
READBACK = ("Cannot copy out of meta tensor", "cannot be called on meta tensors")
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

_REAL_GENERATOR = torch.Generator
FACTORIES = ("randn", "rand", "randint", "randperm")
FROM_INPUT = ("bernoulli", "multinomial", "poisson", "randn_like", "rand_like", "randint_like")
IN_PLACE = ("normal_", "uniform_", "random_", "bernoulli_", "exponential_", "cauchy_", "log_normal_", "geometric_")


class ElsewhereGenerator(_REAL_GENERATOR):
    """A CPU generator that says it lives on another device (``ELSEWHERE``), as a CUDA generator would."""

    def __new__(cls, device: object = None) -> "ElsewhereGenerator":
        return super().__new__(cls, "cpu")

    @property
    def device(self) -> torch.device:
        return ELSEWHERE


def _same_device(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def _checked(fn, where):
    """``fn`` refusing a generator whose device is not the one its numbers are asked on (``where(args, kwargs)``).
    A draw that an ElsewhereGenerator makes on its own device is made on the CPU, where it really lives."""

    def call(*args, **kwargs):
        g = kwargs.get("generator")
        if g is None:
            return fn(*args, **kwargs)
        want = torch.device(where(args, kwargs))
        if not _same_device(want, g.device):
            raise RuntimeError(f"Expected a '{want.type}' device type for generator but found '{g.device.type}'")
        if isinstance(g, ElsewhereGenerator) and "device" in kwargs:
            kwargs["device"] = "cpu"
        return fn(*args, **kwargs)

    return call


def _factory_device(args: tuple, kwargs: dict) -> torch.device:
    return torch.device(kwargs.get("device") or torch.get_default_device())


def _input_device(args: tuple, kwargs: dict) -> torch.device:
    return kwargs.get("device") or args[0].device


def _normal_device(args: tuple, kwargs: dict) -> torch.device:
    tensors = [a for a in (*args[:2], kwargs.get("mean"), kwargs.get("std")) if isinstance(a, torch.Tensor)]
    return tensors[0].device if tensors else _factory_device(args, kwargs)


@pytest.fixture(autouse=True)
def strict_draws(monkeypatch):
    """torch's random functions and in-place random methods refuse a generator on another device than the
    numbers they are asked for (CUDA does this; the CPU and meta do not)."""
    for name in FACTORIES:
        monkeypatch.setattr(torch, name, _checked(getattr(torch, name), _factory_device))
    for name in FROM_INPUT:
        monkeypatch.setattr(torch, name, _checked(getattr(torch, name), _input_device))
    monkeypatch.setattr(torch, "normal", _checked(torch.normal, _normal_device))
    for name in IN_PLACE:
        monkeypatch.setattr(torch.Tensor, name, _checked(getattr(torch.Tensor, name), lambda a, k: a[0].device))


@pytest.fixture
def generators_elsewhere(monkeypatch):
    """Every generator made from here on says it lives on another device than the data (the CPU)."""
    monkeypatch.setattr(torch, "Generator", ElsewhereGenerator)


def tiny(channels: int = 1, device: str | torch.device = "cpu") -> torch.nn.Module:
    """An untrained tiny UNet (seeded), in eval mode."""
    torch.manual_seed(0)
    return build("tiny", in_channels=channels).to(device).eval()


def images(n: int = 6, channels: int = 1, size: int = 16, device: str | torch.device = "cpu") -> torch.Tensor:
    return torch.rand(n, channels, size, size, generator=_REAL_GENERATOR().manual_seed(1)).to(device)


def on_meta_until_readback(fn) -> None:
    """Run ``fn`` with data on meta: it may stop only where it reads a value back (meta holds none), never at a
    draw or a device mismatch before that."""
    try:
        fn()
    except (RuntimeError, NotImplementedError) as e:
        if not any(r in str(e) for r in READBACK):
            raise


# ------------------------------------------------------------------ the helpers themselves


def test_draws_are_made_on_the_generators_device_and_moved():
    g = _REAL_GENERATOR().manual_seed(5)
    z = utils.randn((2, 3), g, ELSEWHERE)
    assert z.device == ELSEWHERE
    assert z.shape == (2, 3)
    a = utils.randn((2, 3), _REAL_GENERATOR().manual_seed(5), dtype=torch.float64)
    assert torch.equal(a, torch.randn((2, 3), generator=_REAL_GENERATOR().manual_seed(5), dtype=torch.float64))
    assert utils.rand(4, g, ELSEWHERE).device == ELSEWHERE
    assert utils.randint(0, 3, (5,), g, ELSEWHERE).dtype == torch.int64
    assert sorted(utils.randperm(6, g).tolist()) == list(range(6))
    with pytest.raises(ValueError, match="low < high, got low=3, high=3"):
        utils.randint(3, 3, (2,), g)
    with pytest.raises(RuntimeError, match="Expected a 'meta' device type for generator but found 'cpu'"):
        torch.randn(2, generator=g, device=ELSEWHERE)  # what CUDA says (the fixture makes meta say it too)


# ------------------------------------------------------------------ data elsewhere: CPU generators, meta data


def test_model_device_is_the_first_parameter_or_buffer_then_the_fallback():
    """One helper answers where a network runs: its parameters' device (meta here: a model moved elsewhere is
    found there, not assumed on the CPU), a buffer's for a module with buffers only, else the fallback."""
    assert utils.model_device(build("tiny").to(ELSEWHERE)) == ELSEWHERE
    only_buffer = torch.nn.Module()
    only_buffer.register_buffer("b", torch.zeros(1, device=ELSEWHERE))
    assert utils.model_device(only_buffer) == ELSEWHERE
    assert utils.model_device(torch.nn.ReLU()) == torch.device("cpu")
    assert utils.model_device(torch.nn.ReLU(), ELSEWHERE) == ELSEWHERE


def test_noise_reaches_data_on_another_device():
    """The crash of the first CUDA run: ``add_noise`` drew on the images' device with a CPU generator."""
    g = _REAL_GENERATOR().manual_seed(0)
    x = torch.zeros(3, 1, 8, 8, device=ELSEWHERE)
    assert noise.add_noise(x, 0.1, g).device == ELSEWHERE
    assert noise.sample_sigma(4, generator=g, device=ELSEWHERE).device == ELSEWHERE
    assert noise.add_noise(x, torch.full((3,), 0.2), g).device == ELSEWHERE  # one sigma per image, given on the CPU
    on_meta_until_readback(lambda: noise.noisy_pair(x, generator=g))  # checks its sigma on the device: a read-back


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("x_on", ["cpu", "meta"])
def test_a_training_batch_reaches_another_device(flip, x_on):
    """Indices, flips, sigma and z from the CPU generator; a training set on the CPU or already on the device."""
    cfg = train_mod.TrainConfig(preset="tiny", batch=4, hflip=flip, progress=False)
    dd = distributed.Dist(0, 1, ELSEWHERE)
    x = torch.zeros(10, 1, 16, 16, device=x_on)
    xb, y, sigma = train_mod.draw_batch(x, cfg, _REAL_GENERATOR().manual_seed(0), dd)
    assert xb.device == y.device == sigma.device == ELSEWHERE
    assert y.shape == (4, 1, 16, 16)


META_RUNS = {
    "psnr_table": lambda m, x, mean: evaluate.psnr_table(m, x, (0.1,)),
    "phi_blocks": lambda m, x, mean: representation.phi_blocks(m, x, 0.2, 2, ("enc1", "mid")),
    "ascent": lambda m, x, mean: sampling.ascent(
        m, mean, 2, sampling.AscentConfig(max_iter=2), generator=_REAL_GENERATOR().manual_seed(0)
    ),
    "fixed_schedule": lambda m, x, mean: sampling.fixed_schedule(
        m, mean, targets.Target(torch.zeros(1, 2, 16), (0.5,)), 2, [0.5], max_iter=1
    ),
}


@pytest.mark.parametrize("name", sorted(META_RUNS))
def test_evaluation_phi_and_samplers_run_on_another_device_up_to_their_first_readback(name):
    model = tiny(device=ELSEWHERE)
    model.check_finite = False  # its check is itself a read-back; skip it to get further
    x, mean = torch.zeros(4, 1, 16, 16, device=ELSEWHERE), torch.zeros(1, 1, 16, 16, device=ELSEWHERE)
    on_meta_until_readback(lambda: META_RUNS[name](model, x, mean))


# ------------------------------------------------------------------ generators elsewhere: real runs on the CPU


def test_psnr_table_with_generators_elsewhere(request):
    model, x = tiny(), images()
    plain = evaluate.psnr_table(model, x, (0.1, 0.4))
    request.getfixturevalue("generators_elsewhere")
    assert evaluate.psnr_table(model, x, (0.1, 0.4)) == plain


def test_phi_with_generators_elsewhere(request):
    model, x = tiny(), images()
    plain = representation.phi_blocks(model, x, 0.2, 3, ("enc1", "mid"))
    request.getfixturevalue("generators_elsewhere")
    got = representation.phi_blocks(model, x, 0.2, 3, ("enc1", "mid"))
    assert all(torch.equal(got[b], plain[b]) for b in plain)
    assert torch.equal(representation.phi(model, x, 0.2, 3), plain["mid"])


def test_sampler_steps_with_generators_elsewhere(request):
    model, x = tiny(), images(2)
    mean = sampling.mean_image(x)
    cfg = sampling.AscentConfig(max_iter=2, match_iter=1)

    def run() -> list[torch.Tensor]:
        target = targets.image_target(model, x, n_per=1, n_noise=2, grid=[0.2, 0.5])
        a, _ = sampling.ascent(model, mean, 2, cfg, target, torch.Generator().manual_seed(0))
        b, _ = sampling.fixed_schedule(model, mean, target, 2, [0.5, 0.2], max_iter=1)
        return [a, b]

    plain = run()
    request.getfixturevalue("generators_elsewhere")
    assert all(torch.equal(p, q) for p, q in zip(run(), plain))


def _train_cfg(out: Path, **kw) -> train_mod.TrainConfig:
    return train_mod.TrainConfig(
        preset="tiny",
        data="fashion-mnist",
        batch=8,
        steps=4,
        eval_every=2,
        ckpt_every=2,
        log_every=2,
        n_eval=8,
        ema=0.9,
        hflip=True,
        eval_sigmas=(0.1,),
        progress=False,
        out=str(out),
        **kw,
    )


def test_training_with_generators_elsewhere(tmp_path, monkeypatch, request):
    """A few steps of ``train`` (evaluation, EMA, flips, a resume) with every generator elsewhere: the same
    weights and log as without. The data are made first (their loaders draw on the CPU with CPU generators)."""
    prepared = train_mod._data(_train_cfg(tmp_path / "x", max_train=64))
    monkeypatch.setattr(train_mod, "_data", lambda cfg: prepared)
    plain = train_mod.train(_train_cfg(tmp_path / "plain"))
    request.getfixturevalue("generators_elsewhere")
    train_mod.train(_train_cfg(tmp_path / "elsewhere"), stop_at=2)
    run = train_mod.train(_train_cfg(tmp_path / "elsewhere"), resume=True)
    wa, wb = checkpoints.load(plain).model.state_dict(), checkpoints.load(run).model.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    drop = ("elapsed_s", "cpu_s", "img_per_s")
    la, lb = ([{k: v for k, v in r.items() if k not in drop} for r in checkpoints.read_log(p)] for p in (plain, run))
    assert la == lb


# ------------------------------------------------------------------ the training step's levers (CPU-checkable)


def test_ema_as_one_multi_tensor_update_equals_the_loop():
    model = tiny().train()
    ema = {k: v.detach().float().clone() + 0.01 for k, v in model.state_dict().items()}
    loop = {k: v.clone() for k, v in ema.items()}
    model = model.to(memory_format=torch.channels_last)
    ema = trainstate.ema_like(ema, model)
    assert all(ema[k].stride() == v.stride() for k, v in model.state_dict().items())
    for step in range(3):
        trainstate.update_ema(ema, model, trainstate.ema_decay(0.99, step))
        for k, v in model.state_dict().items():
            loop[k].lerp_(v.detach().float(), 1 - trainstate.ema_decay(0.99, step))
    assert all(torch.equal(ema[k], loop[k]) for k in loop)


def test_optimizer_kind_and_resident_data_by_device():
    assert train_mod.make_optimizer(tiny(), 1e-3, "cpu").defaults["foreach"] is True
    x = torch.zeros(3, 1, 8, 8)
    assert train_mod.resident(x, torch.device("cpu")) is x


def test_compiled_training_step_has_no_graph_break():
    """What ``--compile`` compiles (the network in training mode, as the loop runs it) and the loss after it trace
    as one graph: no read-back of a value, no Python branch on a tensor."""
    model = tiny().train()
    model.check_finite = False  # as train() sets it
    x, sigma = images(4), torch.full((4,), 0.2)
    ex = torch._dynamo.explain(lambda y: train_mod.batch_loss(model(y), x, sigma, True))(x + 0.2)
    assert ex.graph_break_count == 0, [b.reason for b in ex.break_reasons]
    assert ex.graph_count == 1, [b.reason for b in ex.break_reasons]


# ------------------------------------------------------------------ the GPU check script


def gpu_check():
    """scripts/gpu_check.py as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_gpu_check_without_cuda_says_so_in_one_line_and_exits_2(tmp_path, capsys):
    assert gpu_check().main(["--out", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no CUDA GPU visible to torch" in err
    assert not (tmp_path / "r.json").exists()


def test_gpu_check_reads_logs_reports_and_goals(tmp_path):
    g = gpu_check()
    log = [{"step": 0, "eval": []}] + [{"step": s, "loss": 0.1, "elapsed_s": 1.0 + s / 10} for s in (50, 100, 300)]
    assert g.train_rate(log, batch=4) == pytest.approx(200 * 4 / 20)
    (tmp_path / "j.xml").write_text(
        '<testsuites><testsuite tests="5" failures="1" errors="0" skipped="2"/></testsuites>'
    )
    assert g.junit_counts(tmp_path / "j.xml") == {"tests": 5, "failures": 1, "errors": 0, "skipped": 2}
    row = {"model_only": {"img_per_s": 100.0, "mfu": 0.41}, "train_loop": {"share_of_model_only": 0.96}}
    steps = {
        "bench_eager": {"status": "passed", "result": [row]},
        "bench_compiled": {"status": "passed", "result": [row]},
    }
    s = g.summary({**steps, "train": {"status": "passed", "img_per_s": 90.0, "same_setup_as_bench": True}})
    assert s["all_passed"]
    assert s["sdr_train_share_of_bench_eager"] == pytest.approx(0.9)
    assert all(s["goals"].values())


# ------------------------------------------------------------------ on a CUDA GPU (skipped without one)


def sdr(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "sdrlib.cli", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600
    )


@pytest.fixture(scope="module")
def cuda_cache(tmp_path_factory) -> dict:
    """One data cache for the CUDA runs of this file (the shapes set is built once)."""
    return {"SDR_CACHE": str(tmp_path_factory.mktemp("cache"))}


@pytest.fixture
def exact_fp32(monkeypatch):
    """Full float32 convolutions and matmuls on the GPU (no TF32), to compare with the CPU closely."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)


def _cuda_train_args(out: Path) -> list[str]:
    args = ["--preset", "tiny", "--data", "shapes", "--size", "32", "--batch", "32", "--n-eval", "32"]
    args += ["--eval-every", "10", "--ckpt-every", "10", "--log-every", "5", "--ema", "0.99", "--hflip"]
    return args + ["--device", "cuda", "--bf16", "--no-progress", "--out", str(out)]


@CUDA
def test_cuda_sdr_train_resume_and_eval(tmp_path, cuda_cache):
    """``sdr train --device cuda --bf16`` through evaluations, a checkpoint and a resume, then ``sdr eval --device
    cuda``, whose PSNR is the CPU's (the same noise: drawn on the CPU, moved)."""
    out = tmp_path / "run"
    t = sdr("train", *_cuda_train_args(out), "--steps", "20", env=cuda_cache)
    assert t.returncode == 0, t.stderr[-3000:]
    t = sdr("train", *_cuda_train_args(out), "--steps", "30", "--resume", env=cuda_cache)
    assert t.returncode == 0, t.stderr[-3000:]
    log = checkpoints.read_log(out)
    assert [r["step"] for r in log if "eval" in r] == [0, 10, 20, 30]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in log if "loss" in r)
    assert checkpoints.read_config(out)["device"].startswith("cuda")
    rows = {}
    for dev in ("cuda", "cpu"):
        e = sdr("eval", str(out), "--device", dev, "--n", "32", "--json", env=cuda_cache)
        assert e.returncode == 0, e.stderr[-3000:]
        rows[dev] = json.loads(e.stdout)
    for a, b in zip(rows["cuda"], rows["cpu"]):
        assert a["psnr_noisy"] == pytest.approx(b["psnr_noisy"], abs=1e-4)
        assert a["psnr_denoised"] == pytest.approx(b["psnr_denoised"], abs=0.05)


@CUDA
def test_cuda_sdr_train_compiled(tmp_path, cuda_cache):
    """``sdr train --device cuda --bf16 --compile``: the compiled network trains and evaluates."""
    out = tmp_path / "run"
    t = sdr("train", *_cuda_train_args(out), "--steps", "20", "--compile", env=cuda_cache)
    assert t.returncode == 0, t.stderr[-3000:]
    log = checkpoints.read_log(out)
    assert [r["step"] for r in log if "eval" in r] == [0, 10, 20]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in log if "loss" in r)


@CUDA
def test_cuda_batches_noise_and_training_set():
    cfg = train_mod.TrainConfig(preset="tiny", batch=8, hflip=True, progress=False)
    dev = torch.device("cuda")
    x = train_mod.resident(torch.rand(20, 1, 16, 16), dev)
    assert x.is_cuda
    gen_dev = torch.Generator(device=dev).manual_seed(1)
    for data in (x, x.cpu()):
        xb, y, sigma = train_mod.draw_batch(
            data, cfg, torch.Generator().manual_seed(0), distributed.Dist(0, 1, dev), gen_dev
        )
        assert xb.is_cuda
        assert y.is_cuda
        assert sigma.is_cuda
    z = noise.add_noise(torch.zeros(2, 1, 8, 8, device=dev), 1.0, torch.Generator().manual_seed(3))
    assert torch.equal(z.cpu(), noise.add_noise(torch.zeros(2, 1, 8, 8), 1.0, torch.Generator().manual_seed(3)))
    assert noise.add_noise(torch.zeros(2, 1, 8, 8, device=dev), 1.0, gen_dev).is_cuda  # a CUDA generator too
    assert train_mod.make_optimizer(tiny(device=dev), 1e-3, dev).defaults["fused"] is True


@CUDA
def test_cuda_features_match_the_cpu(exact_fp32):
    """phi of several blocks, images given on the CPU or on the GPU, against the CPU's."""
    cpu_model, gpu_model, x = tiny(), tiny(device="cuda"), images()
    want = representation.phi_blocks(cpu_model, x, 0.2, 3, ("enc1", "mid"))
    for xs in (x, x.cuda()):
        got = representation.phi_blocks(gpu_model, xs, 0.2, 3, ("enc1", "mid"))
        assert all(torch.allclose(got[b], want[b], rtol=1e-3, atol=1e-4) for b in want)
    assert evaluate.psnr_table(gpu_model, x.cuda(), (0.1,))[0]["psnr_noisy"] == pytest.approx(
        evaluate.psnr_table(cpu_model, x, (0.1,))[0]["psnr_noisy"], abs=1e-4
    )


@CUDA
def test_cuda_samplers_run():
    """One adaptive (guided ascent) and one fixed-schedule run on the GPU, the mean image given on the GPU."""
    model, x = tiny(device="cuda"), images(2).cuda()
    mean = sampling.mean_image(x)
    target = targets.image_target(model, x, n_per=1, n_noise=2, grid=[0.2, 0.5])
    a, da = sampling.ascent(model, mean, 2, sampling.AscentConfig(max_iter=3, match_iter=2), target)
    b, db = sampling.fixed_schedule(model, mean, target, 2, [0.5, 0.2], max_iter=2)
    assert a.is_cuda
    assert b.is_cuda
    assert torch.isfinite(a).all()
    assert torch.isfinite(b).all()
    assert da.sigma.shape[1] == db.sigma.shape[1] == 2
