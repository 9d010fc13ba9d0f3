"""``flowsentinel report``: the page renders in a real headless Chromium with every plot drawn."""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from flowsentinel.alerting.report import PLOTS, read_alerts, report_summary
from flowsentinel.alerting.suppress import SuppressConfig
from flowsentinel.cli import main
from flowsentinel.errors import DataError
from flowsentinel.io.alerts import AlertWriter

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def alert_file(portscan_flows, sample_frame, tmp_path_factory):
    """EVE alerts of real flows: the metered port scan (with flow times) and a slice of the NF sample."""
    path = tmp_path_factory.mktemp("report") / "alerts.jsonl"
    rng = np.random.default_rng(3)

    class Explained:
        """Attributions in the shape explain_flows returns, for a writer without a model."""

        def __init__(self, frame, rows):
            self.columns = ["IN_PKTS", "TCP_FLAGS", "L4_DST_PORT"]
            self.values = frame.iloc[rows][self.columns].to_numpy(dtype=object)
            self.contributions = rng.normal(0, 0.2, (len(rows), 3))
            self.baseline_score = 0.1

        def top(self, i, k):
            return [{"feature": c, "value": int(v), "contribution": round(float(x), 4)}
                    for c, v, x in zip(self.columns, self.values[i], self.contributions[i])][:k]

    with open(path, "w") as fh:
        w = AlertWriter(fh, "jsonl", model_name="m", model_version="v", suppress=SuppressConfig(window_s=60),
                        explainer=Explained)
        for frame, cls in ((portscan_flows, "Reconnaissance"), (sample_frame.head(300), None)):
            n = len(frame)
            classes = np.full(n, cls, dtype=object) if cls else frame["Attack"].to_numpy(dtype=object)
            w.write(frame, rng.uniform(0.6, 1.0, n), classes, classes != "Benign", np.arange(n) + 2)
        w.finish()
    return path


def test_report_counts_follow_ups_with_their_repeats(alert_file, portscan_flows):
    alerts = read_alerts(alert_file)
    s = report_summary(alerts)
    assert s["followups"] >= 1 and s["alert_records"] + s["followups"] == len(alerts)
    scanner = portscan_flows["IPV4_SRC_ADDR"].mode()[0]
    by_source = dict(s["top_sources"])
    assert by_source[scanner] == (portscan_flows["IPV4_SRC_ADDR"] == scanner).sum()
    assert s["explained"] == s["alert_records"]


def test_report_renders_in_headless_chromium(alert_file, tmp_path):
    if not Path(CHROMIUM).exists() or not Path(CHROMEDRIVER).exists():
        pytest.skip("Chromium and chromedriver (Debian packages chromium, chromium-driver) are not installed")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    html, md = tmp_path / "report.html", tmp_path / "report.md"
    assert main(["-q", "report", str(alert_file), "-o", str(html), "--markdown", str(md)]) == 0
    assert all((tmp_path / "report_plots" / f"{name}.png").stat().st_size > 0 for name, _ in PLOTS)
    text = md.read_text()
    assert all(f"report_plots/{name}.png" in text for name, _ in PLOTS) and "| source |" in text

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(dir=tmp_path)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--window-size=1200,2000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(60)
        driver.get(html.as_uri())
        plots = driver.execute_script(
            "return Array.from(document.querySelectorAll('img.plot')).map(i => "
            "({id: i.id, done: i.complete, w: i.naturalWidth, h: i.naturalHeight, shown: i.getBoundingClientRect().width}))")
        tables = driver.execute_script("return document.querySelectorAll('table').length")
    finally:
        driver.quit()
    assert [p["id"] for p in plots] == [name for name, _ in PLOTS]
    for p in plots:
        assert p["done"] and p["w"] > 100 and p["h"] > 50 and p["shown"] > 100, p
    assert tables >= 6


def test_report_on_a_file_without_alerts(tmp_path, capsys):
    path = tmp_path / "flows.jsonl"
    path.write_text('{"event_type": "flow"}\n')
    with pytest.raises(DataError, match="no alert records"):
        read_alerts(path)
    path.write_text("not json\n")
    assert main(["-q", "report", str(path)]) == 2
    assert "line 1" in capsys.readouterr().err
    assert main(["-q", "report", str(tmp_path / "missing.jsonl")]) == 2


def test_ecs_alerts_report_too(sample_frame, tmp_path):
    out = io.StringIO()
    w = AlertWriter(out, "ecs", suppress=SuppressConfig(window_s=60))
    frame = sample_frame.head(200)
    w.write(frame, np.full(len(frame), 0.9), frame["Attack"].to_numpy(dtype=object),
            (frame["Attack"] != "Benign").to_numpy(), np.arange(len(frame)))
    w.finish()
    path = tmp_path / "alerts.ecs.jsonl"
    path.write_text(out.getvalue())
    alerts = read_alerts(path)
    assert int(alerts["flows"].sum()) == int((frame["Attack"] != "Benign").sum())
