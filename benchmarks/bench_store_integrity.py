"""What the store's integrity checks cost when the book reads its committed results.

Reads every committed evaluation record and analysis cache entry of ``data/artifacts``
twice in one run, in alternating order: as plain JSON, and through the checked readers of
the book (:func:`neurosens.evaluation.records.load_done`'s record check — n, sha256 of the
flags and image hashes — and :func:`neurosens.store.cache.cached`'s entry check — keys,
parameters, sha256 of the value), plus the per-run ``config.json`` hash check. Prints the
seconds of each and their ratio; the difference is what the checks add to ``make book``.

    python benchmarks/bench_store_integrity.py
"""

from __future__ import annotations

import json
import time

from neurosens.evaluation.records import _read as read_record
from neurosens.store.artifacts import ArtifactStore
from neurosens.store.cache import _read as read_entry


def plain(store: ArtifactStore) -> int:
    n = 0
    for rid in store.runs():
        for p in sorted(store.run_dir(rid).glob("*/*.json")):
            json.loads(p.read_text(encoding="utf-8"))
            n += 1
    return n


def checked(store: ArtifactStore) -> int:
    n = 0
    for rid in store.runs():
        store.record(rid)  # config hash = run id
        d = store.run_dir(rid)
        for p in sorted(d.glob("eval/*.json")):
            read_record(store, rid, f"eval/{p.name}")
            n += 1
        for p in sorted(d.glob("analysis/*.json")):
            rec = json.loads(p.read_text(encoding="utf-8"))
            read_entry(p, rec["params"], None)
            n += 1
    return n


def main() -> None:
    store = ArtifactStore()
    t = {"plain": 0.0, "checked": 0.0}
    for _ in range(3):
        for name, fn in (("plain", plain), ("checked", checked)):
            t0 = time.perf_counter()
            files = fn(store)
            t[name] += time.perf_counter() - t0
    print(f"{files} files of {len(store.runs())} runs, 3 rounds each")
    print(f"plain JSON reads   {t['plain'] / 3:.3f} s per pass")
    print(f"checked reads      {t['checked'] / 3:.3f} s per pass")
    print(
        f"ratio checked / plain = {t['checked'] / t['plain']:.2f}; the checks add "
        f"{(t['checked'] - t['plain']) / 3:.3f} s per full read of the store"
    )


if __name__ == "__main__":
    main()
