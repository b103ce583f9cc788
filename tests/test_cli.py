"""The sdr command line: it agrees with the API, and user mistakes exit non-zero with one line."""

import json
import subprocess
import sys

import pytest

from sdrlib import checkpoints, cli


def run(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    rc = cli.main(
        [
            "train",
            "--preset",
            "tiny",
            "--steps",
            "30",
            "--batch",
            "16",
            "--max-train",
            "500",
            "--eval-every",
            "30",
            "--n-eval",
            "32",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    return out


def test_train_records_command_and_resumes(trained, capsys):
    cfg = checkpoints.read_config(trained)
    assert cfg["command"].startswith("sdr train --preset tiny --steps 30")
    assert cfg["train"]["batch"] == 16
    assert cfg["step"] == 30
    rc, out, _ = run(capsys, "train", "--out", str(trained), "--resume", "--steps", "40", "--no-progress")
    assert rc == 0
    assert "step 40" in out
    cfg = checkpoints.read_config(trained)
    assert cfg["train"]["batch"] == 16
    assert cfg["train"]["max_train"] == 500  # saved config kept
    assert len(cfg["commands"]) == 2
    assert "--resume" in cfg["commands"][1]


def test_eval_matches_api(trained, capsys):
    from sdrlib import data
    from sdrlib.evaluate import psnr_table

    rc, out, _ = run(capsys, "eval", str(trained), "--n", "20", "--sigmas", "0.1", "0.3", "--json")
    assert rc == 0
    rows = json.loads(out)
    test = data.load("fashion-mnist", "test").subset(20, seed=0)
    ref = psnr_table(checkpoints.load_model(trained), test.images, [0.1, 0.3], seed=0)
    assert rows == ref  # the CLI prints exactly what the API computes


def test_info(trained, capsys):
    rc, out, _ = run(capsys, "info", str(trained))
    assert rc == 0
    assert "11,689 parameters" in out
    assert "produced by: sdr train" in out


def test_data_counts(capsys):
    rc, out, _ = run(capsys, "data", "fashion-mnist")
    assert rc == 0
    assert "60000 images" in out
    assert "  1000  Ankle boot" in out


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["train", "--preset", "huge"], "unknown preset 'huge'"),
        (["train", "--data", "nope", "--preset", "tiny"], "unknown data set 'nope'"),
        (["train", "--sigma-max", "-1"], "non-negative"),
        (["train", "--sigma-max", "nan"], "finite"),
        (["eval", "/no/such/ckpt"], "no checkpoint"),
        (["data", "folder:/no/such/folder"], "/no/such/folder"),
    ],
)
def test_user_errors_are_one_line(capsys, tmp_path, argv, msg):
    rc, out, err = run(capsys, *argv, *(["--out", str(tmp_path / "o")] if argv[0] == "train" else []))
    assert rc == 2
    assert err.count("\n") == 1
    assert msg in err
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_tampered_checkpoint_cli(trained, capsys, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(trained, bad)
    w = bad / "model.safetensors"
    w.write_bytes(w.read_bytes()[:-8])
    rc, _, err = run(capsys, "eval", str(bad))
    assert rc == 2
    assert "sha256" in err


def test_missing_fashion_mnist_message(capsys, monkeypatch, tmp_path):
    from sdrlib import data

    monkeypatch.setattr(data.fashion_mnist, "FASHION_DIRS", ())
    monkeypatch.setenv("SDR_CACHE", str(tmp_path))
    monkeypatch.delenv("SDR_FASHION_MNIST", raising=False)
    rc, _, err = run(capsys, "data", "fashion-mnist")
    assert rc == 2
    assert "dataset-fashion-mnist" in err


def test_console_script_exits_nonzero():
    r = subprocess.run([sys.executable, "-m", "sdrlib.cli", "info", "nowhere"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.startswith("sdr info: error:")
    assert "Traceback" not in r.stderr


def test_a_reader_that_goes_away_is_not_an_error():
    """`sdr verdicts --json | head -1`: the pipe closes before sdr writes; it exits quietly (no error line)."""
    p = subprocess.Popen(
        [sys.executable, "-m", "sdrlib.cli", "verdicts", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    p.stdout.close()  # closed long before the child has imported anything
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141, err
    assert err == "", err


def test_info_readme(trained, capsys):
    rc, out, _ = run(capsys, "info", str(trained), "--readme", "--machine", "a test machine")
    text = (trained / "README.md").read_text()
    assert rc == 0
    assert "sdr train --preset tiny --steps 30" in text
    assert "a test machine" in text
    assert "denoised dB" in text
    (trained / "notes.md").write_text("Stopped at step 30: a test.\n")
    run(capsys, "info", str(trained), "--readme")
    assert "## Notes\n\nStopped at step 30: a test.\n" in (trained / "README.md").read_text()


def test_every_option_has_a_help_line():
    """`sdr <command> --help` documents every option of every command."""
    import argparse

    from sdrlib import cli

    sub = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        for action in p._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"sdr {name}: {action.option_strings or action.dest} has no help"
            assert action.help.strip(), f"sdr {name}: {action.option_strings or action.dest} has no help"
