"""The Dockerfile, compose.yaml and deploy/k8s/ read structurally (no Docker or cluster here):
what runs, as whom, on which images, probed how, stopped how long after SIGTERM, scaled on what."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.app import CALL_LOG_SECONDS
from bot.calls import WRAP_UP_SECONDS
from config.settings import Settings
from pipeline.metrics import CALLS_ACTIVE

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
DEFAULT_DRAIN = Settings.model_fields["drain_seconds"].default
ACTIVE_CALLS_METRIC = CALLS_ACTIVE.describe()[0].name


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _k8s() -> dict[tuple[str, str], dict[str, Any]]:
    """Every object the kustomization applies, by (kind, name)."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    objects = {}
    for resource in kustomization["resources"]:
        for doc in _documents(K8S / resource):
            assert {"apiVersion", "kind", "metadata"} <= set(doc), resource
            objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


def _config() -> dict[str, str]:
    [config] = [doc for (kind, _), doc in _k8s().items() if kind == "ConfigMap"]
    return config["data"]


def _stop_budget(drain_seconds: float) -> float:
    """What a launcher may take after SIGTERM: the drain, the wrap-up, the last call-log writes."""
    return drain_seconds + WRAP_UP_SECONDS + CALL_LOG_SECONDS


def _pinned(image: str) -> bool:
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return float(match[1])


def _pod_specs() -> list[dict[str, Any]]:
    specs = []
    for (kind, _), doc in _k8s().items():
        if kind == "Deployment":
            specs.append(doc["spec"]["template"]["spec"])
        elif kind == "CronJob":
            specs.append(doc["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return specs


def _command(lines: list[str], instruction: str) -> list[str]:
    [line] = [line for line in lines if line.startswith(instruction + " ")]
    return yaml.safe_load(line.removeprefix(instruction + " "))


def test_dockerfile_runs_the_launcher_as_a_user_on_a_pinned_base_with_its_models_inside() -> None:
    # One instruction a line: continuation lines joined.
    lines = [line.strip() for line in (REPO / "Dockerfile").read_text().replace("\\\n", " ").splitlines()]
    arguments = dict(re.findall(r"^ARG (\w+)=(\S+)$", "\n".join(lines), re.MULTILINE))
    bases = [re.sub(r"\$\{(\w+)\}", lambda m: arguments[m[1]], line.split()[1])
             for line in lines if line.startswith("FROM ")]
    assert bases and all(_pinned(base) and "slim" in base for base in bases), bases
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    runtime = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")):]
    assert any(line.startswith("USER ") for line in runtime)  # the stage that ships, not the build
    assert _command(runtime, "CMD") == ["python", "-m", "bot"]
    # The models load at build time with no network: they are in the image.
    [check] = [line for line in runtime if line.startswith("RUN --network=none")]
    assert "turns.load_models()" in check and "offline_speech.load_models()" in check
    assert any(line.startswith("HEALTHCHECK") and "/health" in line for line in runtime)


def test_the_deployment_is_ready_on_health_and_outlasts_its_drain() -> None:
    objects = _k8s()
    deployment = objects[("Deployment", "service-desk-launcher")]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    drain = float(_config().get("DRAIN_SECONDS", DEFAULT_DRAIN))
    assert drain >= DEFAULT_DRAIN
    assert pod["terminationGracePeriodSeconds"] >= _stop_budget(drain)
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    port = container["readinessProbe"]["httpGet"]["port"]
    assert port in [p["name"] for p in container["ports"]] + [p["containerPort"] for p in container["ports"]]
    # Liveness is not /health: its 503 while the database is down must not restart live calls.
    assert "httpGet" not in container["livenessProbe"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["args"] == ["python", "-m", "bot"]
    assert {"configMapRef", "secretRef"} <= {key for source in container["envFrom"] for key in source}
    service = objects[("Service", "service-desk-launcher")]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_the_autoscaler_follows_active_calls_per_pod() -> None:
    objects = _k8s()
    hpa = objects[("HorizontalPodAutoscaler", "service-desk-launcher")]
    assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    assert ("Deployment", hpa["spec"]["scaleTargetRef"]["name"]) in objects
    [metric] = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == ACTIVE_CALLS_METRIC  # the gauge GET /metrics serves
    limit = int(_config().get("MAX_CONCURRENT_CALLS", Settings.model_fields["max_concurrent_calls"].default))
    assert 0 < float(metric["pods"]["target"]["averageValue"]) < limit
    adapter = yaml.safe_load((K8S / "prometheus-adapter-rules.yaml").read_text())
    assert ACTIVE_CALLS_METRIC in adapter["rules"]["custom"][0]["seriesQuery"]


def test_the_cron_jobs_run_the_scheduled_commands_in_the_shop_time_zone() -> None:
    jobs = {name: doc for (kind, name), doc in _k8s().items() if kind == "CronJob"}
    commands = {tuple(doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"])
                for doc in jobs.values()}
    assert ("python", "-m", "reminders") in commands and ("python", "-m", "crm", "purge") in commands
    zone = _config().get("SHOP_TIMEZONE", Settings.model_fields["shop_timezone"].default)
    for doc in jobs.values():
        assert len(doc["spec"]["schedule"].split()) == 5
        assert doc["spec"]["timeZone"] == zone
        assert doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize("pod", _pod_specs(), ids=lambda pod: pod["containers"][0]["name"])
def test_every_pod_runs_a_pinned_image_as_a_user(pod: dict[str, Any]) -> None:
    assert pod["securityContext"]["runAsNonRoot"] is True
    for container in pod["containers"]:
        assert _pinned(container["image"]), container["image"]
        module = container["args"][2]
        assert container["args"][:2] == ["python", "-m"] and importlib.util.find_spec(module), module


def test_compose_runs_the_launcher_its_servers_and_the_daily_reminders() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    assert {"launcher", "postgres", "redis", "reminders"} <= set(services)
    assert all(_pinned(service["image"]) for service in services.values())
    launcher = services["launcher"]
    assert _seconds(launcher["stop_grace_period"]) >= _stop_budget(DEFAULT_DRAIN)
    assert {"postgres", "redis"} <= set(launcher["depends_on"])
    assert launcher["environment"]["DATABASE_URL"].startswith("postgresql://")
    reminders = services["reminders"]
    assert reminders["command"][:3] == ["python", "-m", "reminders.daily"]
    assert importlib.util.find_spec("reminders.daily")
    # Redis keeps the call-log journal across its restarts.
    assert "--appendonly" in services["redis"]["command"]
