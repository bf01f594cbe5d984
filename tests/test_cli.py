from __future__ import annotations

import json
import subprocess
import sys

from segstudio import cli


def test_help_lists_headless_commands(capsys) -> None:
    try:
        cli.main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    assert "models" in out
    assert "desktop app" in out


def test_wants_cli_tells_commands_from_paths() -> None:
    assert cli.wants_cli(["--help"])
    assert cli.wants_cli(["models"])
    assert not cli.wants_cli([])
    assert not cli.wants_cli(["/some/folder"])


def test_models_json_lists_the_zoo() -> None:
    res = subprocess.run([sys.executable, "-m", "segstudio", "models", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    names = [m["name"] for m in json.loads(res.stdout)]
    assert "unet" in names


def test_a_command_that_needs_torch_says_so_without_it(tmp_path) -> None:
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"\0" * 16)
    code = "import sys; sys.modules['torch'] = None; from segstudio.cli import main; sys.exit(main(sys.argv[1:]))"
    res = subprocess.run([sys.executable, "-c", code, "export-onnx", str(model)], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2, res.stderr
    assert "`segstudio export-onnx` needs PyTorch, which is not installed" in res.stderr
    assert "Traceback" not in res.stderr
