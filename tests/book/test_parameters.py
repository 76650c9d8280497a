"""The papermill parameters are checked before any compute (book.notebook)."""

from __future__ import annotations

import pytest

from neurosens.attacks import AttackError
from neurosens.book import notebook
from neurosens.core.config import resolve
from neurosens.core.errors import ConfigError


def test_check_attacks_and_parameters():
    cfg = resolve("smoke")
    assert notebook.check_attacks(cfg, ["fgsm", "clean", "fgsm"]) == ["clean", "fgsm"]
    with pytest.raises(AttackError, match="Valid attacks"):
        notebook.check_attacks(cfg, ["pgd"])
    assert notebook.check_attacks(cfg, '["pgd_linf"]') == ["clean", "pgd_linf"]  # papermill -p
    assert notebook.check_attacks(cfg, "fgsm,cw") == ["clean", "fgsm", "cw"]
    with pytest.raises(AttackError, match="Valid attacks"):
        notebook.check_attacks(cfg, '["pgd"]')
    with pytest.raises(AttackError):
        notebook.check_attacks(cfg, [])
    assert notebook.check_subset("k", "[3]", (3, 6)) == [3]
    assert notebook.check_subset("k", None, (3, 6)) == [3, 6]
    with pytest.raises(ConfigError, match="subset"):
        notebook.check_subset("k", [4], (3, 6))
    with pytest.raises(ConfigError, match="alp"):
        notebook.require("methods", ["pat", "sns"], ["alp"])
