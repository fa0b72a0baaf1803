"""The compose deployment parses and is wired together (no Docker engine runs here)."""

from __future__ import annotations

from pathlib import Path

import yaml

DEPLOY = Path(__file__).parent.parent / "deploy"


def test_compose_services_reference_each_other_consistently() -> None:
    """Scorers point at the kafka service, wait for its health check, and expose metrics."""
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "scorer", "prometheus"} <= set(services)
    scorer = services["scorer"]
    assert "--bootstrap-servers=kafka:9092" in scorer["command"]
    assert scorer["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert (DEPLOY / Path(scorer["build"]["dockerfile"]).name).is_file()
    prometheus = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    targets = prometheus["scrape_configs"][0]["dns_sd_configs"][0]
    assert targets["names"] == ["scorer"] and targets["port"] == 9108
    assert "--metrics-port=9108" in scorer["command"]
