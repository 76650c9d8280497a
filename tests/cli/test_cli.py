import subprocess
import sys


def test_info_prints_environment(artifacts):
    out = subprocess.run(
        [sys.executable, "-m", "neurosens", "info"], capture_output=True, text=True, check=True
    ).stdout
    for needle in ("torch", "device", "threads", "fashion_mnist", "artifacts (0 in"):
        assert needle in out
    for needle in ("AVX2 ", "AVX-512 ", "AMX ", "bf16 ", "oneDNN ISA", "ATen ISA"):
        assert needle in out


def test_data_command_offline_error(tmp_path, monkeypatch):
    env = {"NEUROSENS_DATA": str(tmp_path), "PATH": "/usr/bin:/bin"}
    import neurosens.data.images as D

    if D.DEBIAN_FASHION_MNIST.is_dir():
        # the Debian copy is found second: the command succeeds and unpacks into tmp_path
        r = subprocess.run([sys.executable, "-m", "neurosens", "data", "--offline"],
                           capture_output=True, text=True, env=env)  # fmt: skip
        assert r.returncode == 0 and (tmp_path / "FashionMNIST" / "raw").is_dir()
    else:
        r = subprocess.run([sys.executable, "-m", "neurosens", "data", "--offline"],
                           capture_output=True, text=True, env=env)  # fmt: skip
        assert r.returncode == 2 and "dataset-fashion-mnist" in r.stderr


def test_flops_is_a_subcommand_of_the_one_tree(capsys):
    from neurosens.cli.main import main

    assert main(["flops"]) == 0
    out = capsys.readouterr().out
    assert "GMACs/img" in out and "measured on this machine" in out
