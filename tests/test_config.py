"""Experiment config: defaults, TOML round trip and rejection of bad input."""

import numpy as np
import pytest

from experiments.cli import main
from experiments.config import ExperimentConfig, bundled_config_names, load_config
from photonic.hardware import HardwareConfig


def write(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_config_round_trips_through_toml(tmp_path):
    config = ExperimentConfig()
    path = write(tmp_path, config.to_toml())
    assert load_config(path) == config


def test_bundled_configs_load_by_name():
    names = bundled_config_names()
    assert "moons-ideal" in names
    for name in names:
        assert load_config(name).name == name


def test_unknown_top_level_key_is_rejected(tmp_path):
    path = write(tmp_path, "sead = 3\n")
    with pytest.raises(ValueError, match="'sead'"):
        load_config(path)


def test_unknown_section_key_is_rejected(tmp_path):
    path = write(tmp_path, "[training]\nepoch = 3\n")
    with pytest.raises(ValueError, match="'epoch'.*allowed keys"):
        load_config(path)


def test_unknown_dataset_is_rejected(tmp_path):
    path = write(tmp_path, '[data]\nname = "mnist-full"\n')
    with pytest.raises(ValueError, match="mnist-full.*moons"):
        load_config(path)


def test_negative_loss_is_rejected(tmp_path):
    path = write(tmp_path, "[hardware.static]\nmzi_loss_db = -0.5\n")
    with pytest.raises(ValueError, match=r"mzi_loss_db = -0\.5.*>= 0"):
        load_config(path)


def test_zero_quantization_bits_are_rejected(tmp_path):
    path = write(tmp_path, "[hardware.programming]\nphase_bits = 0\n")
    with pytest.raises(ValueError, match="phase_bits = 0.*1 to 32"):
        load_config(path)


def test_unknown_hardware_preset_is_rejected(tmp_path):
    path = write(tmp_path, '[hardware]\npreset = "perfect"\n')
    with pytest.raises(ValueError, match="'perfect' does not exist.*ideal"):
        load_config(path)


def test_invalid_toml_names_the_file(tmp_path):
    path = write(tmp_path, "seed = = 3\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(path)


def test_missing_config_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.toml"):
        load_config(tmp_path / "nothere.toml")


def test_hardware_section_overrides_preset_fields():
    hardware = HardwareConfig.from_mapping(
        {"preset": "bench", "adjoint": {"monitor": {"pai_k": 0.02}}}
    )
    assert hardware.adjoint.monitor.pai_k == 0.02
    assert hardware.forward.monitor.pai_k == 0.005
    assert hardware.programming.phase_bits == 8


def test_passes_table_sets_every_pass():
    hardware = HardwareConfig.from_mapping(
        {"passes": {"phase_noise_std": 0.03}, "interference": {"phase_noise_std": 0.1}}
    )
    assert hardware.forward.phase_noise_std == 0.03
    assert hardware.adjoint.phase_noise_std == 0.03
    assert hardware.interference.phase_noise_std == 0.1


def test_cli_reports_bad_config_without_traceback(tmp_path, capsys):
    path = write(tmp_path, "[network]\nn_layers = 0\n")
    status = main(["train", str(path), "--results-dir", str(tmp_path)])
    assert status == 2
    assert "n_layers = 0" in capsys.readouterr().err


def test_nan_input_to_training_pipeline_is_rejected():
    from photonic.encoding import AmplitudeEncoder

    features = np.array([[0.1, 0.2], [np.nan, 0.3]])
    with pytest.raises(ValueError, match="NaN"):
        AmplitudeEncoder(4).fit(features)


def test_hardware_table_without_preset_keeps_default_preset(tmp_path):
    path = write(tmp_path, "[hardware.static]\nmzi_loss_db = 0.1\n")
    config = load_config(path)
    assert config.hardware.static.mzi_loss_db == 0.1
    assert config.hardware.programming.phase_bits == 8
    assert config.hardware.forward.monitor.pai_k == 0.005


def test_resolved_config_keeps_continuous_phases(tmp_path):
    path = write(tmp_path, '[hardware]\npreset = "ideal"\n')
    config = load_config(path)
    again = load_config(write(tmp_path, config.to_toml()))
    assert again.hardware.programming.phase_bits is None
    assert again == config


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("[network]\noutput_groups = [[0.5, 1], [2, 3]]\n", "output_groups"),
        ("[network]\noutput_groups = [0, 1]\n", "output_groups"),
        ("[baseline]\nhidden_sizes = 4\n", "hidden_sizes = 4"),
        ("[data]\nnoise = true\n", "noise = True"),
        ("[data]\nnoise = inf\n", "noise = inf"),
        ("seed = 4294967296\n", "seed = 4294967296"),
    ],
)
def test_wrong_types_are_rejected(tmp_path, text, pattern):
    with pytest.raises(ValueError, match=pattern):
        load_config(write(tmp_path, text))


def test_cli_rejects_results_dir_that_is_a_file(tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    status = main(["train", "--epochs", "1", "--results-dir", str(blocker)])
    assert status == 2
    assert "cannot write the results folder" in capsys.readouterr().err


def test_cli_rejects_bad_groups_before_writing(tmp_path, capsys):
    path = write(tmp_path, "[network]\noutput_groups = [[0, 0], [1, 2]]\n")
    results = tmp_path / "results"
    status = main(["train", str(path), "--results-dir", str(results)])
    assert status == 2
    assert "output_groups" in capsys.readouterr().err
    assert not results.exists()


def test_cli_accepts_verbose_after_command(tmp_path):
    status = main(["train", "-v", "--print-config"])
    assert status == 0
