"""A one-page report a person reads: alerts over time by class, top sources and destinations, top explanations.

:func:`read_alerts` takes an alert file that ``flowsentinel detect`` wrote
(EVE JSON lines or ECS documents; flow records are skipped) and
:func:`write_report` writes one HTML file with its plots embedded as PNG
data, plus a Markdown version whose plots lie beside it.

Follow-up records (suppressed repeats) count with their ``count``: a scan
that produced one alert and one follow-up of 28 counts as 29 alerted flows.

>>> import json, tempfile
>>> from pathlib import Path
>>> d = Path(tempfile.mkdtemp())
>>> rec = {"timestamp": "2024-01-01T00:00:00.000000+0000", "event_type": "alert", "src_ip": "10.0.0.1",
...        "dest_ip": "10.0.0.2", "dest_port": 80, "alert": {"signature_id": 1717011, "severity": 2},
...        "flowsentinel": {"class": "DoS", "score": 0.9,
...                         "explanation": [{"feature": "IN_PKTS", "value": 3, "contribution": 0.4}]}}
>>> _ = (d / "a.jsonl").write_text(json.dumps(rec) + "\\n")
>>> alerts = read_alerts(d / "a.jsonl")
>>> len(alerts), alerts.loc[0, "cls"], int(alerts["flows"].sum())
(1, 'DoS', 1)
>>> html, md = write_report(alerts, d / "report.html", source=d / "a.jsonl")
>>> html.read_text().count('class="plot"'), md.exists()
(4, True)
"""

from __future__ import annotations

import base64
import html as html_lib
import io
import json
import logging
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError

__all__ = ["read_alerts", "write_report", "report_summary", "PLOTS"]

log = logging.getLogger(__name__)

#: The report's plots: file stem and title.
PLOTS = (
    ("alerts_over_time", "Alerted flows over time, by class"),
    ("top_sources", "Top sources"),
    ("top_destinations", "Top destinations"),
    ("top_explanations", "Features that pushed alert scores most"),
)
TOP = 10


def _get(rec: dict, *path, default=None):
    for key in path:
        if not isinstance(rec, dict) or key not in rec:
            return default
        rec = rec[key]
    return rec


def _alert_row(rec: dict) -> dict | None:
    """One alert (or follow-up) record as a flat row; ``None`` for flow records and other events."""
    if "@timestamp" in rec:  # ECS
        if _get(rec, "event", "kind") != "alert":
            return None
        when, src = rec["@timestamp"], _get(rec, "source", "ip")
        dst, dport = _get(rec, "destination", "ip"), _get(rec, "destination", "port")
        sid, severity = _get(rec, "rule", "id"), _get(rec, "event", "severity")
    else:
        if rec.get("event_type") != "alert":
            return None
        when, src, dst, dport = rec.get("timestamp"), rec.get("src_ip"), rec.get("dest_ip"), rec.get("dest_port")
        sid, severity = _get(rec, "alert", "signature_id"), _get(rec, "alert", "severity")
    fs = rec.get("flowsentinel", {})
    agg = fs.get("aggregate")
    return {
        "time": agg["first"] if agg else when,
        "last": agg["last"] if agg else when,
        "cls": fs.get("class", "unknown"),
        "src": src,
        "dst": dst,
        "dport": dport,
        "score": fs.get("score"),
        "signature_id": sid,
        "severity": severity,
        "flows": agg["count"] if agg else 1,
        "followup": bool(agg),
        "destinations": agg["destinations"] if agg else ([dst] if dst else []),
        "explanation": fs.get("explanation") or [],
        "clock_time": fs.get("time_source") == "clock",
        "flow_id": rec.get("flow_id"),
        "community_id": rec.get("community_id") or _get(rec, "network", "community_id"),
    }


def read_alerts(path: str | Path) -> pd.DataFrame:
    """The alert and follow-up records of an EVE or ECS file, one row each (flow records are skipped)."""
    path = Path(path)
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}, line {n}: not a JSON record ({exc.msg}); give the EVE or ECS output "
                                f"of 'flowsentinel detect'") from None
            row = _alert_row(rec) if isinstance(rec, dict) else None
            if row is not None:
                rows.append(row)
    if not rows:
        raise DataError(f"{path}: no alert records (event_type 'alert' or event.kind 'alert') to report on")
    frame = pd.DataFrame(rows)
    for col in ("time", "last"):
        frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
    return frame


def report_summary(alerts: pd.DataFrame) -> dict:
    """Totals and top lists that the report shows."""
    flows = alerts["flows"]
    sources = alerts.groupby(alerts["src"].fillna("(no address)"))["flows"].sum().sort_values(ascending=False)
    dest_counts: Counter = Counter()
    for dests in alerts["destinations"]:
        dest_counts.update(dests or ["(no address)"])
    features: dict[str, list[float]] = defaultdict(list)
    for expl in alerts["explanation"]:
        for item in expl:
            features[item["feature"]].append(float(item["contribution"]))
    top_features = sorted(((f, len(c), float(np.sum(c)), float(np.mean(np.abs(c)))) for f, c in features.items()),
                          key=lambda t: -abs(t[2]))
    return {
        "alert_records": int((~alerts["followup"]).sum()),
        "followups": int(alerts["followup"].sum()),
        "alerted_flows": int(flows.sum()),
        "first": alerts["time"].min(),
        "last": alerts["last"].max(),
        "clock_time": bool(alerts["clock_time"].any()),
        "by_class": alerts.groupby("cls")["flows"].sum().sort_values(ascending=False).to_dict(),
        "top_sources": list(sources.head(TOP).items()),
        "n_sources": int(sources.size),
        "top_destinations": dest_counts.most_common(TOP),
        "top_features": top_features[:TOP],
        "explained": int((alerts["explanation"].str.len() > 0).sum()),
        "top_alerts": alerts[~alerts["followup"]].sort_values("score", ascending=False).head(3),
    }


def _figures(alerts: pd.DataFrame, summary: dict) -> dict[str, bytes]:
    """The plots as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    out = {}

    def save(fig, name):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        out[name] = buf.getvalue()

    fig, ax = plt.subplots(figsize=(9, 3.4))
    span = (summary["last"] - summary["first"]).total_seconds()
    bins = 40 if span > 0 else 1
    times = alerts["time"].dt.tz_convert(None).to_numpy()
    for cls in summary["by_class"]:
        sel = (alerts["cls"] == cls).to_numpy()
        ax.hist(times[sel], bins=bins, weights=alerts["flows"].to_numpy()[sel], histtype="step", linewidth=1.8,
                label=f"{cls} ({summary['by_class'][cls]:,})",
                range=(times.min(), times.max() if span > 0 else times.min() + np.timedelta64(1, "s")))
    ax.set_ylabel("alerted flows")
    ax.set_xlabel("time (UTC)" + (", partly the clock: flows without times" if summary["clock_time"] else ""))
    ax.legend(fontsize=8)
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    save(fig, "alerts_over_time")

    for name, items, label in (("top_sources", summary["top_sources"], "alerted flows"),
                               ("top_destinations", summary["top_destinations"], "alert records naming it")):
        fig, ax = plt.subplots(figsize=(6, 0.35 * max(len(items), 1) + 1))
        ax.barh([str(k) for k, _ in items][::-1], [v for _, v in items][::-1], color="#4477aa")
        ax.set_xlabel(label)
        save(fig, name)

    feats = summary["top_features"]
    fig, ax = plt.subplots(figsize=(6, 0.35 * max(len(feats), 1) + 1))
    if feats:
        ax.barh([f for f, *_ in feats][::-1], [s for _, _, s, _ in feats][::-1],
                color=["#cc6677" if s > 0 else "#4477aa" for _, _, s, _ in feats][::-1])
        ax.set_xlabel("summed contribution to alert scores")
    else:
        ax.text(0.5, 0.5, "no explanations in this file (run detect with --explain)", ha="center", va="center")
        ax.set_axis_off()
    save(fig, "top_explanations")
    return out


def _table(header: list[str], rows: list[list]) -> tuple[str, str]:
    """The same table as HTML and as Markdown."""
    esc = html_lib.escape
    h = "<table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in header) + "</tr>"
    h += "".join("<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in r) + "</tr>" for r in rows) + "</table>"
    m = "| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n"
    m += "".join("| " + " | ".join(str(v).replace("|", "\\|") for v in r) + " |\n" for r in rows)
    return h, m


def _explanation_text(expl: list) -> str:
    return "; ".join(f"{e['feature']} = {e['value']} ({e['contribution']:+.3f})" for e in expl) or "none"


def write_report(alerts: pd.DataFrame, html_path: str | Path, md_path: str | Path | None = None,
                 source: str | Path | None = None, title: str = "flowsentinel alert report") -> tuple[Path, Path]:
    """Write the HTML page (plots embedded) and the Markdown page (plots beside it); returns both paths."""
    html_path = Path(html_path)
    md_path = Path(md_path) if md_path is not None else html_path.with_suffix(".md")
    s = report_summary(alerts)
    figures = _figures(alerts, s)
    from ..io.outputs import check_output_dir, check_output_path, write_bytes, write_text

    check_output_path(html_path)
    check_output_path(md_path)
    plot_dir = check_output_dir(md_path.parent / f"{md_path.stem}_plots")
    for name, png in figures.items():
        write_bytes(plot_dir / f"{name}.png", png)

    span = f"{s['first']:%Y-%m-%d %H:%M:%S} to {s['last']:%Y-%m-%d %H:%M:%S} UTC"
    facts = [
        ["alerted flows", f"{s['alerted_flows']:,}"],
        ["alert records", f"{s['alert_records']:,}"],
        ["follow-ups (suppressed repeats)", f"{s['followups']:,} folding {s['alerted_flows'] - s['alert_records']:,} flows"],
        ["sources", f"{s['n_sources']:,}"],
        ["time span", span + (" (partly the clock: some flows had no times)" if s["clock_time"] else "")],
        ["alerts with explanations", f"{s['explained']:,}"],
    ]
    tables = [
        ("Summary", _table(["", ""], facts)),
        ("Alerted flows by class", _table(["class", "alerted flows"], [[k, f"{v:,}"] for k, v in s["by_class"].items()])),
        ("Top sources", _table(["source", "alerted flows"], [[k, f"{v:,}"] for k, v in s["top_sources"]])),
        ("Top destinations", _table(["destination", "alert records naming it"], [[k, v] for k, v in s["top_destinations"]])),
        ("Top explanation features", _table(["feature", "alerts", "summed contribution", "mean |contribution|"],
                                            [[f, c, f"{t:+.3f}", f"{a:.3f}"] for f, c, t, a in s["top_features"]])),
        ("Highest-scoring alerts", _table(
            ["time", "class", "source", "destination", "score", "why"],
            [[f"{r.time:%Y-%m-%d %H:%M:%S}", r.cls, r.src, f"{r.dst}:{r.dport}" if r.dst else r.dport, r.score,
              _explanation_text(r.explanation)] for r in s["top_alerts"].itertuples()])),
    ]
    origin = f"Source: {source}" if source else ""
    plots_html = "".join(
        f'<figure><img class="plot" id="{name}" alt="{html_lib.escape(label)}" '
        f'src="data:image/png;base64,{base64.b64encode(figures[name]).decode()}"><figcaption>{html_lib.escape(label)}'
        f"</figcaption></figure>" for name, label in PLOTS)
    write_text(
        html_path,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html_lib.escape(title)}</title><style>"
        "body{font-family:sans-serif;max-width:1100px;margin:1em auto;color:#222}"
        "table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}"
        "figure{display:inline-block;margin:0.5em;vertical-align:top}img.plot{max-width:100%}"
        f"</style></head><body><h1>{html_lib.escape(title)}</h1><p>{html_lib.escape(origin)}</p>"
        f"{tables[0][1][0]}<div class=\"plots\">{plots_html}</div>"
        + "".join(f"<h2>{html_lib.escape(h)}</h2>{t[0]}" for h, t in tables[1:]) + "</body></html>\n",
        encoding="utf-8")
    md = [f"# {title}", "", origin, ""]
    for h, t in tables[:1]:
        md += [f"## {h}", "", t[1]]
    md += [f"![{label}]({plot_dir.name}/{name}.png)\n" for name, label in PLOTS]
    for h, t in tables[1:]:
        md += [f"## {h}", "", t[1]]
    write_text(md_path, "\n".join(md))
    return html_path, md_path
