"""Every input the fuzzers kept (``tests/fuzz_regressions/TARGET-<sha1>``), replayed through its target.

``scripts/fuzz.py`` writes them; each was a failure when it was found and
must stay within the target's promises (``tests/hardening_targets.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hardening_targets import TARGETS, run_target

HERE = Path(__file__).resolve().parent / "fuzz_regressions"
SAVED = sorted(p for p in HERE.glob("*-*") if p.is_file()) if HERE.is_dir() else []


@pytest.mark.parametrize("path", SAVED, ids=[p.name for p in SAVED])
def test_kept_input_stays_within_its_targets_promises(path, small_model, tmp_path):
    target = path.name.split("-", 1)[0]
    assert target in TARGETS, f"{path.name}: no target named {target!r}"
    if target == "capture":
        pytest.importorskip("nfstream")
    run_target(target, path.read_bytes(), tmp_path / "case", model=small_model)


def test_the_probe_field_of_a_sealed_manifest_is_checked(small_model, tmp_path):
    """The first manifest finding (a sealed manifest with a probability set to null): a ModelLoadError naming
    the field, where it was a ValueError traceback from numpy."""
    import json
    import shutil

    from flowsentinel.errors import ModelLoadError
    from flowsentinel.persistence import MANIFEST, load_model
    from tests.hardening_support import reseal

    d = tmp_path / "m"
    shutil.copytree(small_model, d)
    manifest = json.loads((d / MANIFEST).read_text())
    manifest["probe"]["proba"][0] = None
    (d / MANIFEST).write_text(json.dumps(manifest))
    reseal(d)
    with pytest.raises(ModelLoadError, match="field 'probe'"):
        load_model(d, engine="auto")


def test_seeds_pass_every_target(small_model, tmp_path):
    from tests.hardening_targets import seeds

    for target in TARGETS:
        if target == "capture":
            pytest.importorskip("nfstream")
        for data in seeds(target, tmp_path / "seeds", model=small_model):
            run_target(target, data, tmp_path / "case", model=small_model)
