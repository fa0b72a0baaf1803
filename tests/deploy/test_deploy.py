"""The compose deployment parses and is wired together; test_stack.py runs it on an engine."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import locations
import yaml

DEPLOY = locations.DEPLOY


def test_compose_services_reference_each_other_consistently() -> None:
    """Scorers point at the kafka service, start after the topic step, and expose metrics. The
    topic step waits for the broker itself, with a deadline, not for a health condition an
    engine may ignore (podman before 4.6 does); so does every modstream service that talks to
    Kafka (--wait-for-broker)."""
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "scorer", "prometheus"} <= set(services)
    scorer = services["scorer"]
    assert "--bootstrap-servers=kafka:9092" in scorer["command"]
    assert "depends_on" not in services["topics"]
    script = services["topics"]["command"][0]
    assert "until /opt/kafka/bin/kafka-topics.sh" in script and "within 180 s" in script
    for name, service in services.items():
        if "--bootstrap-servers=kafka:9092" in service.get("command", []):
            assert "--wait-for-broker=180" in service["command"], name
            assert service["depends_on"]["kafka"]["condition"] == "service_healthy", name
    assert (DEPLOY / Path(scorer["build"]["dockerfile"]).name).is_file()
    prometheus = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    targets = prometheus["scrape_configs"][0]["dns_sd_configs"][0]
    assert targets["names"] == ["scorer"] and targets["port"] == 9108
    assert "--metrics-port=9108" in scorer["command"]


def test_topics_are_created_before_scorers_start_and_serve_is_exposed() -> None:
    """A one-shot topic step runs first; scorers wait for it; the API is published on 8080."""
    services = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]
    script = services["topics"]["command"][0]
    for topic in ("images.incoming", "images.flagged", "images.review", "images.safe",
                  "images.matched"):  # fmt: skip
        assert topic in script
    assert "--partitions 8" in script and "--if-not-exists" in script
    # The bank topic every scorer follows is compacted, one partition.
    assert "--topic images.banks --partitions 1" in script
    assert "--config cleanup.policy=compact" in script
    assert "--bank-topic=images.banks" in services["scorer"]["command"]
    condition = services["scorer"]["depends_on"]["topics"]["condition"]
    assert condition == "service_completed_successfully"
    assert services["scorer"]["deploy"]["replicas"] >= 2
    assert services["scorer"]["deploy"]["mode"] == "replicated"  # podman-compose needs it said
    serve = services["serve"]
    assert serve["command"][0] == "serve" and "--port=8080" in serve["command"]
    assert "8080:8080" in serve["ports"]


def test_alert_rules_are_mounted_and_name_only_metrics_modstream_exports() -> None:
    """Prometheus loads alerts.yml; every metric an alert reads is one modstream exports."""
    from modstream.pipeline.metrics import PipelineMetrics

    prometheus = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    assert prometheus["rule_files"] == ["alerts.yml"]  # beside prometheus.yml
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


def _compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return compose


def test_every_file_a_service_mounts_exists_and_named_volumes_are_declared() -> None:
    """Bind mounts point at files or folders in deploy/; named volumes appear under volumes."""
    compose = _compose()
    declared = set(compose.get("volumes") or {})
    mounts = 0
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), (name, source)
            else:
                assert source in declared, (name, source)
            mounts += 1
    assert mounts >= 6


def test_compose_runs_kafka_topics_connector_scorers_serve_prometheus_and_grafana() -> None:
    """The whole pipeline, each service wired to the ones it needs."""
    services = _compose()["services"]
    assert set(services) >= {
        "kafka", "topics", "connector", "scorer", "serve", "prometheus", "grafana"
    }  # fmt: skip
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    connector = services["connector"]
    assert {"--role=connector", "--source=jetstream"} <= set(connector["command"])
    assert connector["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert "connector-state:/var/lib/modstream" in connector["volumes"]
    # exactly once is an opt-in of the environment; at least once otherwise
    assert "--delivery=${MODSTREAM_DELIVERY:-at-least-once}" in services["scorer"]["command"]
    assert "3000:3000" in services["grafana"]["ports"]
    assert "9090:9090" in services["prometheus"]["ports"]
    built = [s for s in services.values() if "build" in s]
    assert {s["build"]["dockerfile"] for s in built} == {"deploy/Dockerfile"}
    # Each modstream service tells the image's health check where it answers.
    ports = {"connector": "9109/metrics", "serve": "8080/readyz", "labeler": "8071/xrpc/_health",
             "verdicts": "8072/readyz"}  # fmt: skip
    for name, port in ports.items():
        assert services[name]["environment"]["MODSTREAM_HEALTH_URL"].endswith(port), name


def test_prometheus_scrapes_every_modstream_service_on_its_port() -> None:
    """Each modstream service has a scrape job, on the port its command opens."""
    services = _compose()["services"]
    jobs = {
        job["job_name"]: job
        for job in yaml.safe_load((DEPLOY / "prometheus.yml").read_text())["scrape_configs"]
    }
    assert set(jobs) == {"modstream", "modstream-connector", "modstream-serve", "modstream-review",
                         "modstream-labeler", "modstream-verdicts"}  # fmt: skip
    for name, port in (("review", 8070), ("labeler", 8071), ("verdicts", 8072)):
        found = jobs[f"modstream-{name}"]["dns_sd_configs"][0]  # no target unless its profile runs
        assert found["names"] == [name] and found["port"] == port
        assert f"--port={port}" in services[name]["command"]
        assert services[name]["profiles"] == [name]
    assert jobs["modstream-connector"]["static_configs"][0]["targets"] == ["connector:9109"]
    assert "--metrics-port=9109" in services["connector"]["command"]
    assert jobs["modstream-serve"]["static_configs"][0]["targets"] == ["serve:8080"]


def test_grafana_provisions_the_datasource_the_dashboard_uses() -> None:
    """The dashboard's panels all read the provisioned Prometheus (by uid), the provider loads
    the folder compose mounts, and p50 and p99 round-trip panels are there."""
    grafana = DEPLOY / "grafana"
    (source,) = yaml.safe_load((grafana / "provisioning/datasources/prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["url"] == "http://prometheus:9090" and source["type"] == "prometheus"
    (provider,) = yaml.safe_load((grafana / "provisioning/dashboards/modstream.yml").read_text())[
        "providers"
    ]
    mounts = _compose()["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
    dashboard = json.loads((grafana / "dashboards/modstream.json").read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    exprs = []
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        exprs += [target["expr"] for target in panel["targets"]]
    for quantile in ("0.5", "0.99"):
        assert any(
            expr.startswith(f"histogram_quantile({quantile}, ")
            and "modstream_roundtrip_seconds_bucket" in expr
            for expr in exprs
        ), quantile
    wanted = (
        "modstream_results_total", "modstream_stage_seconds_bucket", "modstream_batch_size",
        "modstream_errors_total", "modstream_consumer_lag", "modstream_device_images_total",
        "modstream_connector_events_total", "modstream_connector_reconnects_total",
        "modstream_verdict_lookups_total", "modstream_verdict_lookup_seconds_bucket",
        "modstream_verdict_freshness_seconds_bucket", "modstream_verdict_entries",
    )  # fmt: skip
    for metric in wanted:
        assert any(metric in expr for expr in exprs), metric


def test_dockerfile_is_multi_stage_non_root_warmed_and_health_checked() -> None:
    """Two stages, an unprivileged user, the model cache compiled as that user at build time, and a
    health check."""
    lines = [
        line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines() if line.strip()
    ]
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 2 and stages[0].endswith(" AS build")
    assert any(line.startswith("COPY --from=build ") for line in lines)
    user = [line for line in lines if line.startswith("USER ")]
    assert user and user[-1] != "USER root"
    after_user = lines[lines.index(user[-1]) :]
    assert any(line.startswith("RUN modstream score") for line in after_user), "cache warmed"
    assert any(line.startswith("HEALTHCHECK ") for line in lines)


def test_the_review_console_is_an_opt_in_profile_with_reviewers_from_a_secret() -> None:
    """The review console starts only with its profile, reads reviewers from a secret, and its
    output topic is created with the others."""
    compose = _compose()
    review = compose["services"]["review"]
    assert review["profiles"] == ["review"] and "8070:8070" in review["ports"]
    assert "--reviewers-file=/run/secrets/reviewers" in review["command"]
    assert review["secrets"] == ["reviewers"]
    assert compose["secrets"]["reviewers"] == {"environment": "MODSTREAM_REVIEWERS"}
    assert "images.reviewed" in compose["services"]["topics"]["command"][0]


def test_the_verdict_topic_is_created_compacted_in_compose_and_kubernetes() -> None:
    """images.verdicts keeps the newest entry per key: compacted where compose and the Kubernetes
    Job create it, as the verdict service would create it itself."""
    script = _compose()["services"]["topics"]["command"][0]
    job = (DEPLOY / "kubernetes" / "topics.yaml").read_text()
    for text in (script, job):
        (line,) = [line for line in text.replace("\\\n", " ").splitlines()
                   if "images.verdicts" in line]  # fmt: skip
        assert "cleanup.policy=compact" in line, line


def test_the_topic_step_is_a_valid_shell_script() -> None:
    """The topic step's script parses as bash (compose's $$ escape undone)."""
    script = _compose()["services"]["topics"]["command"][0].replace("$$", "$")  # compose escape
    done = subprocess.run(["bash", "-n", "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# Each listener a modstream service opens, and the flag that sets its address.
LISTENER_HOST_FLAGS = {
    "--metrics-port": "--metrics-host",
    "--port": "--host",
    "--serve-port": "--serve-host",
    "--webhook-port": "--webhook-host",
}


def test_every_listener_a_container_opens_binds_all_interfaces_explicitly() -> None:
    """modstream binds 127.0.0.1 by default (metrics, serve, the webhook, review); in compose and
    in the Dockerfile's default command, each port a service opens comes with its host flag set to
    0.0.0.0, or prometheus and the published ports would reach nothing."""
    import inspect

    from modstream.pipeline.metrics import PipelineMetrics
    from modstream.pipeline.stream.service import PipelineSettings

    assert PipelineSettings().metrics_host == "127.0.0.1"
    assert inspect.signature(PipelineMetrics.serve).parameters["host"].default == "127.0.0.1"
    checked = 0
    for name, service in _compose()["services"].items():
        if "build" not in service:
            continue
        command = service["command"]
        flags = dict(item.partition("=")[::2] for item in command if item.startswith("--"))
        for port_flag, host_flag in LISTENER_HOST_FLAGS.items():
            if port_flag in flags:
                assert flags.get(host_flag) == "0.0.0.0", (name, host_flag)
                checked += 1
    assert checked == 6  # scorer and connector metrics, serve, review, labeler, verdicts
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    (cmd,) = [line for line in dockerfile.splitlines() if line.startswith("CMD ")]
    argv = json.loads(cmd.removeprefix("CMD "))
    assert argv[:3] == ["run", "--role", "scorer"]
    assert argv[argv.index("--metrics-host") + 1] == "0.0.0.0"


def test_compose_runs_the_apache_kafka_release_the_tests_run() -> None:
    """One release: the compose file's apache/kafka tag is the version the tests' pom pins."""
    pom = (locations.TESTS / "apache_kafka" / "pom.xml").read_text()
    (release,) = re.findall(r"<kafka\.version>([^<]+)</kafka\.version>", pom)
    services = _compose()["services"]
    assert services["kafka"]["image"] == services["topics"]["image"] == f"apache/kafka:{release}"
    assert "kafka-data:/var/lib/kafka/data" in services["kafka"]["volumes"]
    assert services["kafka"]["environment"]["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"


def test_every_modstream_service_runs_one_image_with_a_health_check_and_build_arguments() -> None:
    """One image built from deploy/Dockerfile, named once; the health check is in the compose
    file (podman's OCI images drop the Dockerfile's); the base image and extra CAs are build
    arguments the Dockerfile declares."""
    services = _compose()["services"]
    built = {name: s for name, s in services.items() if "build" in s}
    assert set(built) == {"scorer", "connector", "serve", "review", "labeler", "verdicts"}
    assert {s["image"] for s in built.values()} == {"modstream:${MODSTREAM_TAG:-latest}"}
    for service in built.values():
        assert "MODSTREAM_HEALTH_URL" in service["healthcheck"]["test"][-1]
        assert set(service["build"]["args"]) == {"PYTHON_IMAGE", "EXTRA_CA_CERTS"}
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in dockerfile
    assert 'ARG EXTRA_CA_CERTS=""' in dockerfile
    assert dockerfile.count("FROM ${PYTHON_IMAGE}") == 2
