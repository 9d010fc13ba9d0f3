"""The class taxonomy: every attack name in the shared data maps, an unknown name fails and says where to add it."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd
import pytest

from flowsentinel.errors import TaxonomyError
from flowsentinel.taxonomy import TAXONOMY_FILE, Taxonomy, load_taxonomy, normalise_name
from tests.conftest import REPO, data_root

NF_FILES = {
    "nf-bot-iot": "nf-bot-iot-v2/NF-BoT-IoT-v2-sample.csv.gz",
    "nf-cse-cic-ids2018": "nf-cse-cic-ids2018-v2/NF-CSE-CIC-IDS2018-v2-sample.csv.gz",
}


def shared(relative: str) -> Path:
    path = data_root() / relative
    if not path.exists():
        pytest.skip(f"{path} not found; set FLOWSENTINEL_DATA to the shared data folder")
    return path


@pytest.fixture(scope="module")
def tax() -> Taxonomy:
    return load_taxonomy()


@pytest.mark.parametrize("dataset", sorted(NF_FILES))
def test_every_attack_name_of_the_shared_nf_files_maps(tax, dataset):
    path = shared(NF_FILES[dataset])
    names = pd.read_csv(path, usecols=["Attack"])["Attack"]
    assert tax.identify_file(path) == dataset
    classes = tax.map_names(names, dataset, where=str(path))
    assert len(classes) == len(names)
    assert set(classes) <= set(tax.class_names)
    benign = names.map(normalise_name) == normalise_name("Benign")
    assert ((classes == "Benign") == benign.to_numpy()).all()


def test_every_capture_label_of_the_shared_labels_file_maps(tax):
    path = shared("pcaps/labels.csv")
    with open(path, newline="") as fh:
        labels = [row["label"] for row in csv.DictReader(fh)]
    assert set(tax.map_names(labels, "captures", where=str(path))) <= set(tax.class_names)


def test_an_unknown_name_names_itself_the_dataset_and_the_file(tax):
    with pytest.raises(TaxonomyError) as err:
        tax.map_names(["Benign", "Heartbleed", "Benign"], "nf-cse-cic-ids2018", where="flows.csv")
    text = str(err.value)
    assert "'Heartbleed'" in text and "nf-cse-cic-ids2018" in text and str(TAXONOMY_FILE) in text
    assert text.startswith("flows.csv: ")
    assert "(1 flows)" in text


def test_names_match_across_case_spaces_and_underscores_but_not_otherwise(tax):
    cic = "nf-cse-cic-ids2018"
    # NF-CICIDS2018-v3 writes the v2 names with underscores for spaces.
    for spelling in ("DDoS attacks-LOIC-HTTP", "DDoS_attacks-LOIC-HTTP", "ddos  attacks-loic-http "):
        assert tax.class_of(spelling, cic) == tax.class_of("DDoS attacks-LOIC-HTTP", cic)
    for near_miss in ("BruteForce-Web", "DDoS-LOIC-HTTP", "Infiltration"):
        with pytest.raises(TaxonomyError, match=re.escape(repr(near_miss))):
            tax.class_of(near_miss, cic)


def test_a_name_is_known_only_to_its_own_dataset(tax):
    assert tax.class_of("ddos", "nf-ton-iot") == "DDoS"
    with pytest.raises(TaxonomyError, match="nf-bot-iot"):
        tax.class_of("scanning", "nf-bot-iot")


def test_an_unknown_dataset_lists_the_known_ones(tax):
    with pytest.raises(TaxonomyError, match="known: .*nf-bot-iot"):
        tax.dataset("nf-kdd99")


def test_files_and_dataset_values_identify_their_dataset(tax):
    assert tax.identify_file("NF-ToN-IoT-v2.parquet") == "nf-ton-iot"
    assert tax.identify_file("nf-unsw-nb15-v3.csv") == "nf-unsw-nb15"
    assert tax.identify_file("NF-CICIDS2018-v3.csv") == "nf-cse-cic-ids2018"
    assert tax.identify_file("capture-flows.csv") is None
    assert tax.identify_value("NF-BoT-IoT-v2") == "nf-bot-iot"
    assert tax.identify_value("KDD99") is None


def test_every_class_and_every_mapped_name_is_documented(tax):
    doc = (REPO / "docs" / "taxonomy.md").read_text()
    for cls in tax.class_names:
        assert f"`{cls}`" in doc, f"class {cls} is not described in docs/taxonomy.md"
    for entry in tax.datasets.values():
        for name in entry.names:
            assert f"`{name}`" in doc, f"{entry.key} name {name!r} is not explained in docs/taxonomy.md"


def write_taxonomy(path: Path, body: str) -> Path:
    path.write_text('format = 1\n[classes]\nBenign = "normal"\nDoS = "flood"\n' + body)
    return path


@pytest.mark.parametrize(
    "body,message",
    [
        ('[datasets.x]\ntitle = "x"\n[datasets.x.names]\nBenign = "Benign"\nflood = "Floods"\n', "'Floods', which is not a class"),
        ('[datasets.x]\ntitle = "x"\n[datasets.x.names]\n"a b" = "Benign"\n"A_B" = "DoS"\n', "same name once case and spaces"),
        ('[datasets.x]\ntitle = "x"\nfile = ["x*"]\n[datasets.x.names]\nBenign = "Benign"\n', "unknown key"),
        ('[datasets.x]\ntitle = "x"\n', "needs a [datasets.x.names] table"),
        (('[datasets.x]\ntitle = "x"\ndataset_values = ["X"]\n[datasets.x.names]\nBenign = "Benign"\n'
          '[datasets.y]\ntitle = "y"\ndataset_values = ["X"]\n[datasets.y.names]\nBenign = "Benign"\n'), "listed by both"),
        ("[datasets.x\n", "not valid TOML"),
    ],
)
def test_a_broken_taxonomy_file_is_refused_with_its_path(tmp_path, body, message):
    path = write_taxonomy(tmp_path / "taxonomy.toml", body)
    with pytest.raises(TaxonomyError, match=re.escape(message)) as err:
        load_taxonomy(path)
    assert str(path) in str(err.value)


def test_a_taxonomy_without_benign_is_refused(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('format = 1\n[classes]\nDoS = "flood"\n[datasets.x]\ntitle = "x"\n[datasets.x.names]\ndos = "DoS"\n')
    with pytest.raises(TaxonomyError, match="must include 'Benign'"):
        load_taxonomy(path)


def test_an_edited_taxonomy_file_is_read_again(tmp_path):
    path = write_taxonomy(tmp_path / "t.toml", '[datasets.x]\ntitle = "x"\n[datasets.x.names]\nBenign = "Benign"\n')
    assert "flood" not in load_taxonomy(path).dataset("x").names
    write_taxonomy(path, '[datasets.x]\ntitle = "x"\n[datasets.x.names]\nBenign = "Benign"\nflood = "DoS"\n')
    assert load_taxonomy(path).class_of("FLOOD", "x") == "DoS"
