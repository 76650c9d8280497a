import torch

from neurosens import resolve
from neurosens.models import build_model
from neurosens.store.artifacts import ArtifactStore
from neurosens.store.cache import cached


def test_cached_computes_once_and_keys_by_params(artifacts):
    cfg = resolve("smoke", widths=(4,) * 13)
    store = ArtifactStore()
    rid = store.save_run(cfg, build_model(cfg))
    calls = []

    def compute():
        calls.append(1)
        return {"a": torch.tensor([1.0, 2.0])}

    v1 = cached(rid, "thing", {"eps": 0.1}, compute)
    v2 = cached(rid, "thing", {"eps": 0.1}, compute)
    assert v1 == v2 == {"a": [1.0, 2.0]} and len(calls) == 1
    cached(rid, "thing", {"eps": 0.2}, compute)
    assert len(calls) == 2
    assert len(list((artifacts / rid / "analysis").glob("thing-*.json"))) == 2
