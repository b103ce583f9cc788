"""Checkpoints: bit-exact round trip, and refusal of missing, truncated, tampered, mismatched files."""

import json

import pytest
import torch

from sdrlib import checkpoints
from sdrlib.checkpoints import CheckpointError
from sdrlib.unet import build


@pytest.fixture
def ckpt(tmp_path):
    torch.manual_seed(0)
    m = build("tiny")
    path = checkpoints.save(tmp_path / "ck", m, {"note": "x"}, log=[{"step": 1, "loss": 0.5}])
    return path, m


def test_round_trip_is_bit_exact(ckpt):
    path, m = ckpt
    ck = checkpoints.load(path)
    a, b = m.state_dict(), ck.model.state_dict()
    assert a.keys() == b.keys()
    assert all((torch.equal(a[k], b[k]) for k in a))
    assert ck.config["note"] == "x"
    assert ck.log == [{"step": 1, "loss": 0.5}]
    assert ck.model.cfg == m.cfg
    assert not ck.model.training
    y = torch.rand(1, 1, 16, 16)
    assert torch.equal(ck.model(y), m.eval()(y))


def test_nothing_is_pickled(ckpt):
    path, _ = ckpt
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "log.jsonl", "model.safetensors"]
    assert not any(p.read_bytes().startswith(b"\x80") for p in path.iterdir())  # no pickle protocol header


def test_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        checkpoints.load(tmp_path / "nothing")


def test_truncated(ckpt):
    path, _ = ckpt
    f = path / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="sha256"):
        checkpoints.load(path)


def test_tampered(ckpt):
    path, _ = ckpt
    f = path / "model.safetensors"
    b = bytearray(f.read_bytes())
    b[-5] ^= 0xFF
    f.write_bytes(bytes(b))
    with pytest.raises(CheckpointError, match="modified"):
        checkpoints.load(path)


def test_truncated_with_matching_hash_is_still_refused(ckpt):
    """A consistently rewritten but broken weights file fails at the safetensors parse."""
    path, _ = ckpt
    f = path / "model.safetensors"
    f.write_bytes(f.read_bytes()[:50])
    cfg = json.loads((path / "config.json").read_text())
    cfg["sha256"]["model.safetensors"] = checkpoints.sha256_file(f)
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="safetensors"):
        checkpoints.load(path)


def test_mismatched_architecture(ckpt):
    path, _ = ckpt
    cfg = json.loads((path / "config.json").read_text())
    cfg["model"]["mid_width"] = 32
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="do not match the architecture"):
        checkpoints.load(path)


def test_bad_config_json(ckpt):
    path, _ = ckpt
    (path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        checkpoints.load(path)


def test_shipped_name_resolution(ckpt, monkeypatch):
    path, _ = ckpt
    monkeypatch.setenv("SDR_CHECKPOINTS", str(path.parent))
    assert checkpoints.resolve("ck") == path
    with pytest.raises(FileNotFoundError, match="shipped checkpoints: .*'ck'"):
        checkpoints.resolve("no-such-model")


def test_data_of_another_machine_is_refused_with_how_to_get_it(tmp_path):
    """A checkpoint records the fingerprint of its data; load_data refuses a set built from other sources."""
    from sdrlib import data

    m = build("tiny")
    real = data.load("ovals", "test", size=16)
    fp = real.fingerprint()
    cfg = {"train": {"data": "ovals"}, "data_kwargs": {"size": 16}, "data_fingerprint": {"test": fp}}
    ok = checkpoints.save(tmp_path / "ok", m, cfg)
    assert torch.equal(checkpoints.load_data(ok, "test").images, real.images)
    other = {**fp, "sha256": "0" * 16, "sources": {"textures-16-photos": {"images": 256, "classes": 16}}}
    bad = checkpoints.save(tmp_path / "bad", m, {**cfg, "data_fingerprint": {"test": other}})
    with pytest.raises(data.DataMismatch, match="trained on 'ovals' built from textures-16-photos=256"):
        checkpoints.load_data(bad, "test")
    assert "apt-get install ufoai-textures" in data.how_to_get("textures")


def test_ema_only_folder_loads_its_ema_and_refuses_raw_weights(tmp_path):
    """A run kept as its EMA weights alone (fashion-mnist-paper-32): the EMA is the network; raw weights, resuming
    and the README's resume line are refused or left out, naming the folder."""
    from sdrlib.train import TrainConfig

    torch.manual_seed(0)
    m = build("tiny")
    ema = {k: v + 0.01 for k, v in m.state_dict().items()}
    extra = {
        "train": TrainConfig(preset="tiny", ema=0.999).to_dict(),
        "n_params": 1,
        "n_train": 8,
        "step": 1,
        "elapsed_s": 60.0,
        "device": "cuda",
        "command": "sdr train --ema 0.999",
    }
    path = checkpoints.save(tmp_path / "ema-only", m, extra, log=[{"step": 1, "loss": 0.5}], state={}, ema=ema)
    (path / "model.safetensors").unlink()
    (path / "state.safetensors").unlink()
    ck = checkpoints.load(path)
    assert ck.weights == "ema"
    assert ck.sha256 == ck.config["sha256"]["ema.safetensors"]
    assert all(torch.equal(ck.model.state_dict()[k], ema[k]) for k in ema)
    with pytest.raises(CheckpointError, match=rf"{path.name} holds only the EMA weights.*weights='ema'"):
        checkpoints.load(path, weights="raw")
    with pytest.raises(CheckpointError, match="state.safetensors is missing"):
        checkpoints.load(path, with_state=True)
    text = checkpoints.readme_text(path, machine="one GPU")
    assert "`ema.safetensors` (the EMA weights" in text
    assert "cannot be resumed" in text
    assert "--resume" not in text


def test_a_readme_writes_a_repeated_resume_once_with_its_count():
    from sdrlib.checkpoints.readme import command_lines

    train, resume = "sdr train --recipe r --out o", "sdr train --out o --resume"
    assert command_lines([train, resume, resume, resume]) == [train, f"{resume}  # run 3 times"]
    assert command_lines([train, resume, train, resume]) == [train, resume, train, resume]  # not adjacent: kept
    assert command_lines([]) == []


def test_a_finished_run_without_its_optimiser_state_says_it_cannot_be_resumed(tmp_path):
    from sdrlib.train import TrainConfig

    m = build("tiny")
    extra = {"train": TrainConfig(preset="tiny", ema=0.999).to_dict(), "n_params": 1, "n_train": 8, "step": 1,
             "elapsed_s": 60.0, "device": "cpu", "command": "sdr train --ema 0.999"}  # fmt: skip
    path = checkpoints.save(tmp_path / "seed", m, extra, log=[{"step": 1, "loss": 0.5}], state={}, ema=m.state_dict())
    assert "continues the run" in checkpoints.readme_text(path)
    (path / "state.safetensors").unlink()
    text = checkpoints.readme_text(path)
    assert "`model.safetensors` (the raw weights) and `ema.safetensors`" in text
    assert "cannot be resumed" in text and "continues the run" not in text
    assert checkpoints.load(path).weights == "ema"  # the shipped network is unchanged
