"""Turning verdicts into what a SOC acts on.

* :mod:`~flowsentinel.alerting.records`: EVE records (as Suricata writes
  them) and Elastic Common Schema documents, built column-wise;
* :mod:`~flowsentinel.alerting.fields`: a frame's columns as JSON text;
* :mod:`~flowsentinel.alerting.community_id`: Community ID v1 flow hashes;
* :mod:`~flowsentinel.alerting.ndpi`: nDPI's names for ``L7_PROTO``;
* :mod:`~flowsentinel.alerting.signatures`: rule identities of model classes;
* :mod:`~flowsentinel.alerting.suppress`: repeats folded into follow-ups;
* :mod:`~flowsentinel.alerting.report`: the one-page report.

The writer that uses them is :class:`flowsentinel.io.alerts.AlertWriter`;
the explanations come from :mod:`flowsentinel.explain`.
"""
