"""The compose deployment parses and is wired together (no Docker engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

DEPLOY = Path(__file__).parent.parent / "deploy"


def test_compose_services_reference_each_other_consistently() -> None:
    """Scorers point at the kafka service, start after the topic step (which waits for the
    broker's health check), and expose metrics."""
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "scorer", "prometheus"} <= set(services)
    scorer = services["scorer"]
    assert "--bootstrap-servers=kafka:9092" in scorer["command"]
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert (DEPLOY / Path(scorer["build"]["dockerfile"]).name).is_file()
    prometheus = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    targets = prometheus["scrape_configs"][0]["dns_sd_configs"][0]
    assert targets["names"] == ["scorer"] and targets["port"] == 9108
    assert "--metrics-port=9108" in scorer["command"]


def test_topics_are_created_before_scorers_start_and_serve_is_exposed() -> None:
    """A one-shot topic step runs first; scorers wait for it; the API is published on 8080."""
    services = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]
    script = services["topics"]["command"][0]
    for topic in ("images.incoming", "images.flagged", "images.review", "images.safe"):
        assert topic in script
    assert "--partitions 8" in script and "--if-not-exists" in script
    condition = services["scorer"]["depends_on"]["topics"]["condition"]
    assert condition == "service_completed_successfully"
    assert services["scorer"]["deploy"]["replicas"] >= 2
    serve = services["serve"]
    assert serve["command"][0] == "serve" and "--port=8080" in serve["command"]
    assert "8080:8080" in serve["ports"]


def test_alert_rules_are_mounted_and_name_only_metrics_modstream_exports() -> None:
    """Prometheus loads alerts.yml; every metric an alert reads is one modstream exports."""
    from modstream.pipeline.metrics import PipelineMetrics

    prometheus = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    assert prometheus["rule_files"] == ["/etc/prometheus/alerts.yml"]
    mounts = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]["prometheus"][
        "volumes"
    ]
    assert "./alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts
    families = [family.name for family in PipelineMetrics().registry.collect()]
    suffixes = ("", "_total", "_bucket", "_sum", "_count")
    exported = {name + suffix for name in families for suffix in suffixes} | {"up"}
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())["groups"][0]["rules"]
    assert {rule["alert"] for rule in rules} >= {
        "ModstreamRoundTripP99OverBudget", "ModstreamErrorRateHigh",
        "ModstreamConsumerLagGrowing", "ModstreamScorerDown",
    }  # fmt: skip
    for rule in rules:
        assert rule["annotations"]["summary"] and rule["labels"]["severity"]
        names = set(re.findall(r"\b(modstream_[a-z_]+|up)\b", rule["expr"]))
        assert names, rule["alert"]
        assert names <= exported, (rule["alert"], names - exported)
