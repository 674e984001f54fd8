"""``python -m pytensor_nnet demo``: preprocessing, a tiny end-to-end run, determinism, bad input."""

import io
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

pytest.importorskip("rich")
pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

from rich.console import Console  # noqa: E402

from pytensor_nnet.__main__ import main as entry_point  # noqa: E402
from pytensor_nnet.demo import cli, data, lenet, report  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = ["--epochs", "1", "--n-train", "300", "--batch-size", "20", "--quiet"]


def run_quiet(argv):
    console = Console(file=io.StringIO(), width=120)
    result = cli.run(argv, console)
    return result, console.file.getvalue()


# --- preprocessing -----------------------------------------------------------------------


def test_mnist_frame_centres_mass_and_scales():
    images = np.zeros((3, 8, 8))
    images[0, 1:7, 3:5] = 16  # a "1", already centred
    images[1, 0:3, 0:3] = 8  # a blob in the top-left corner: the box hits the field's edge
    images[2, 2:6, 3:7] = np.arange(16).reshape(4, 4)  # off-centre mass, shifted to the centre
    framed = data.mnist_frame(images)
    assert framed.shape == (3, 28, 28)
    assert framed.min() >= 0 and framed.max() <= 1
    assert framed[0].max() == pytest.approx(1.0)
    assert framed[1].max() == pytest.approx(0.5)
    for i in (0, 2):
        cy, cx = ndimage.center_of_mass(framed[i])
        assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5
    # The corner blob cannot be centred without leaving the field: its 20x20 box sits at (0, 0)
    # shifted by the full margin of 8 pixels.
    assert framed[1, :8].sum() == 0 and framed[1, :, :8].sum() == 0
    # Scaling 8 -> 20 keeps the mass in proportion (bilinear interpolation, 6.25 x the pixels).
    assert framed[0].sum() * 16 == pytest.approx(images[0].sum() * (20 / 8) ** 2, rel=0.1)


def test_stratified_split_sizes_classes_and_seed():
    labels = np.repeat(np.arange(10), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    parts = data.stratified_split(labels, [1257, 180, 360])
    assert [len(p) for p in parts] == [1257, 180, 360]
    assert len(np.unique(np.concatenate(parts))) == len(labels)
    for part in parts:
        share = np.bincount(labels[part], minlength=10) / len(part)
        assert np.abs(share - np.bincount(labels) / len(labels)).max() < 0.01
    again = data.stratified_split(labels, [1257, 180, 360])
    other = data.stratified_split(labels, [1257, 180, 360], seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    assert not np.array_equal(parts[2], other[2])
    with pytest.raises(ValueError, match="sizes must add up to 1797"):
        data.stratified_split(labels, [1000, 100])


def test_load_digits_split():
    digits = data.load()
    assert digits.x_train.shape == (1257, 1, 28, 28) and digits.x_train.dtype == np.float32
    assert (len(digits.y_val), len(digits.y_test)) == (180, 360)
    assert np.bincount(digits.y_val).tolist() == [18] * 10
    small = data.load(n_train=300)
    assert len(small.y_train) == 300 and np.bincount(small.y_train).min() >= 29
    assert np.array_equal(small.x_test, digits.x_test)


def test_pick_digits_shows_every_mistake():
    y_true = np.arange(100) % 10
    y_pred = y_true.copy()
    y_pred[[5, 50, 97]] = (y_true[[5, 50, 97]] + 1) % 10
    shown = report.pick_digits(y_true, y_pred, 12)
    assert len(shown) == 12 and {5, 50, 97} <= set(shown.tolist())


# --- end to end --------------------------------------------------------------------------


@pytest.mark.slow
def test_tiny_demo_trains_and_writes_png(tmp_path):
    out = tmp_path / "tiny.png"
    result, text = run_quiet([*TINY, "--out", str(out)])
    assert result["out"] == out.resolve()
    assert out.read_bytes()[:8] == PNG_MAGIC and out.stat().st_size > 20_000
    assert result["test_accuracy"] > 0.3  # 10 classes: chance is 0.1; one epoch gives 0.7-0.8 (seeds 0-5)
    assert len(result["history"].batch_loss) == 15  # 300 images in batches of 20
    assert result["history"].epoch_loss[0] < np.log(10)  # below the loss of a uniform guess
    for line in ("test accuracy", "time per epoch", "compile time", str(out.resolve())):
        assert line in text


@pytest.mark.slow
def test_same_seed_same_numbers(tmp_path):
    argv = [*TINY, "--n-train", "100", "--out", str(tmp_path), "--seed", "3"]
    first, _ = run_quiet(argv)
    second, _ = run_quiet(argv)
    assert len(first["history"].batch_loss) == 5
    assert first["history"].batch_loss == second["history"].batch_loss
    assert first["test_accuracy"] == second["test_accuracy"]
    assert (tmp_path / "demo.png").exists()
    # Another seed: other initial weights (and another order of the images).
    arch = lenet.Architecture()
    w3 = lenet.init_params(arch, np.random.default_rng(3), "float32")
    w4 = lenet.init_params(arch, np.random.default_rng(4), "float32")
    assert not np.array_equal(w3[0], w4[0])
    assert all(np.array_equal(a, b) for a, b in zip(w3, lenet.init_params(arch, np.random.default_rng(3), "float32")))


def test_uncertainty_report_png(tmp_path):
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10), size=30)
    images = rng.random((30, 1, 28, 28))
    out = tmp_path / "bayes.png"
    report.uncertainty_report(out, images, rng.integers(0, 10, 30), probs, "test", count=6)
    assert out.read_bytes()[:8] == PNG_MAGIC


# --- bad input: one line on stderr, exit code 2, nothing trained -------------------------


def one_line_error(capsys, argv):
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    return lines[0]


def test_unknown_mode(capsys):
    line = one_line_error(capsys, ["--mode", "CUDA"])
    assert "--mode" in line and "'CUDA'" in line and "NUMBA" in line


@pytest.mark.parametrize(
    "out, message",
    [("missing/demo.png", "does not exist"), ("demo.txt", "neither a directory nor a .png"), ("adir/", "does not")],
)
def test_unwritable_output_is_refused_before_training(capsys, tmp_path, out, message):
    line = one_line_error(capsys, ["--out", str(tmp_path / out) + ("/" if out.endswith("/") else "")])
    assert message in line and "--out" in line


@pytest.mark.parametrize("module, extra", [("matplotlib", "demo"), ("rich", "demo"), ("sklearn", "demo")])
def test_missing_optional_dependency(capsys, monkeypatch, tmp_path, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    line = one_line_error(capsys, ["--out", str(tmp_path)])
    assert f'pip install "pytensor-nnet[{extra}]"' in line
    assert (module if module != "sklearn" else "scikit-learn") in line


def test_bayes_without_pymc(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pymc", None)
    line = one_line_error(capsys, ["--bayes", "--out", str(tmp_path)])
    assert 'pip install "pytensor-nnet[pymc]"' in line


@pytest.mark.parametrize(
    "argv, name",
    [
        (["--epochs", "0"], "--epochs"),
        (["--nuts"], "--nuts"),
        (["--n-train", "5"], "--n-train"),
        (["--lr", "-1"], "--lr"),
    ],
)
def test_bad_numbers(capsys, argv, name):
    assert name in one_line_error(capsys, argv)


def test_pytorch_mode_runs_or_says_why(capsys, tmp_path):
    code = cli.main([*TINY, "--mode", "pytorch", "--out", str(tmp_path)])
    captured = capsys.readouterr()
    if code == 0:  # a PyTorch backend for the Ops is installed
        assert (tmp_path / "demo.png").exists()
    else:
        assert code == 2 and "Traceback" not in captured.err
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and "--mode PYTORCH" in lines[0] and "NUMBA" in lines[0]


def test_jax_mode_runs_or_says_why(capsys, tmp_path):
    pytest.importorskip("jax")
    code = cli.main([*TINY, "--n-train", "100", "--mode", "jax", "--out", str(tmp_path)])
    captured = capsys.readouterr()
    if code == 0:  # PyTensor's JAX backend keeps float32 sums in float32
        assert (tmp_path / "demo.png").exists()
    else:
        assert code == 2 and "Traceback" not in captured.err
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and "--mode JAX" in lines[0] and "--dtype float64" in lines[0]


def test_command_line_entry_point(tmp_path, capsys):
    proc = subprocess.run(
        [sys.executable, "-m", "pytensor_nnet", "demo", "--mode", "nope"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: argument --mode")
    assert entry_point(["--help"]) == 0
    usage = capsys.readouterr().out
    assert usage.index("demo") < usage.index("bench")
    assert entry_point(["nope"]) == 2 and "unknown command 'nope'" in capsys.readouterr().err


# --- the Bayesian twin (needs pymc) ------------------------------------------------------


def _pymc_or_skip():
    try:
        import pymc  # noqa: F401

        from pytensor_nnet.demo import bayes  # noqa: F401
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"pymc with pytensor_nnet is not importable: {exc}")


@pytest.mark.slow
def test_bayes_advi_tiny(tmp_path):
    _pymc_or_skip()
    out = tmp_path / "bayes.png"
    result, text = run_quiet(
        [
            "--bayes",
            "--n-train",
            "300",
            "--steps",
            "1500",
            "--draws",
            "30",
            "--filters",
            "4",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert out.read_bytes()[:8] == PNG_MAGIC
    probs = result["probs"]
    assert probs.shape == (360, 10) and np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    assert result["test_accuracy"] > 0.3
    assert "test accuracy" in text


@pytest.mark.slow
def test_bayes_nuts_smoke(tmp_path):
    _pymc_or_skip()
    result, _ = run_quiet(
        [
            "--bayes",
            "--nuts",
            "--n-train",
            "60",
            "--steps",
            "20",
            "--draws",
            "10",
            "--filters",
            "2",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert result["probs"].shape == (360, 10) and (tmp_path / "demo_bayes.png").exists()
