"""The README's commands and the CI script agree."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)


def test_ci_runs_the_readme_test_command():
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    test_command = [c for c in readme_commands() if "pytest" in c]
    assert len(test_command) == 1
    assert ci_lines[-1] == test_command[0]


def test_readme_main_job_installs_and_trains():
    main_job = readme_commands()[0]
    assert main_job.startswith("python3 -m venv .venv")
    assert "pip install" in main_job
    assert main_job.endswith("photonic-backprop train")


def test_readme_config_example_loads(tmp_path):
    from experiments.config import load_config

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.findall(r"```toml\n(.*?)```", text, flags=re.S)[0]
    path = tmp_path / "example.toml"
    path.write_text(example, encoding="utf-8")
    config = load_config(path)
    assert config.hardware.adjoint.output_phase_error == 0.02
    assert config.hardware.forward.monitor.pai_k == 0.01


def test_readme_python_example_runs():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.findall(r"```python\n(.*?)```", text, flags=re.S)[0]
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert 0 < namespace["fidelity"] <= 1
