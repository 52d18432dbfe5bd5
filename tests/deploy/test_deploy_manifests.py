"""Deployment artefacts under deploy/: Kubernetes manifests, RabbitMQ definitions, compose and
the one Dockerfile every service's image is built from.

Offline and fast: manifests are schema-checked with ``kubernetes-validate`` (it ships the
Kubernetes JSON schemas inside the package), the Kustomize overlay is rendered with the
``kubectl kustomize`` built into kubectl when kubectl is installed. The RabbitMQ policies are
also applied on the test broker (with ``rabbitmqctl``, when installed) to prove their effect.
"""

from __future__ import annotations

import ast
import asyncio
import copy
import importlib.util
import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import aio_pika
import kubernetes_validate
import pytest
import yaml
from faststream.rabbit import RabbitBroker

from catalog.settings import CatalogSettings
from integrations.settings import IntegrationsSettings
from registration.settings import RegistrationSettings
from te_shared import contracts as c
from te_shared.settings import ServiceSettings
from te_shared.topology import CONSUMES, INTEGRATIONS, REGISTRATION, Topology, declared_by
from te_testing.infra import RabbitNamespace
from zoom_bridge.settings import ZoomBridgeSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAY = K8S / "overlays" / "production"
#: The oldest Kubernetes minor the manifests must be valid for (the chart says >=1.25).
K8S_VERSIONS = ("1.25.0", "1.30.0")

Doc = dict[str, Any]

#: service -> (Python package run by ``python -m``, its settings class)
SERVICES: dict[str, tuple[str, type[ServiceSettings]]] = {
    "catalog": ("catalog", CatalogSettings),
    "registration": ("registration", RegistrationSettings),
    "zoom-bridge": ("zoom_bridge", ZoomBridgeSettings),
    "integrations": ("integrations", IntegrationsSettings),
}
COMMON_SECRETS = {"DATABASE_URL", "AMQP_URL", "JWT_SECRET"}
SECRETS: dict[str, set[str]] = {
    "catalog": COMMON_SECRETS,
    "registration": COMMON_SECRETS,
    "zoom-bridge": COMMON_SECRETS
    | {"ZOOM_CLIENT_SECRET", "ZOOM_WEBHOOK_SECRET", "TOKEN_ENCRYPTION_KEY"},
    "integrations": COMMON_SECRETS | {"WEBHOOK_SECRET_KEY"},
}
GRACEFUL_TIMEOUT = float(ServiceSettings.model_fields["graceful_timeout"].default)


# --- loading -----------------------------------------------------------------------------------


def load_docs(text: str) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def plain_manifest_files() -> list[Path]:
    files = sorted((K8S / "base").rglob("*.yaml")) + sorted(OVERLAY.glob("*.yaml"))
    return [f for f in files if f.name != "kustomization.yaml"]


def base_docs() -> list[Doc]:
    return [doc for f in sorted((K8S / "base").rglob("*.yaml")) for doc in load_docs(f.read_text())]


def render_kustomize(path: Path) -> list[Doc]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    out = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, check=True, timeout=30
    )
    return load_docs(out.stdout)


# --- the checks every variant (base, overlay, chart) must pass ----------------------------------


def schema_check(docs: list[Doc]) -> None:
    assert docs, "nothing rendered"
    for doc in docs:
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(p) for p in exc.path)
                name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
                pytest.fail(f"{name} invalid for Kubernetes {version} at {where}: {exc.message}")


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def service_of(doc: Doc) -> str:
    name: str = doc["metadata"]["labels"]["app.kubernetes.io/name"]
    return name


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def container_of(workload: Doc) -> Doc:
    containers: list[Doc] = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def secret_keys(container: Doc) -> set[str]:
    return {e["name"] for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}


def check_workloads(docs: list[Doc], *, expect_replicas: bool = True) -> None:
    deployments = {service_of(d): d for d in of_kind(docs, "Deployment")}
    assert set(deployments) == set(SERVICES), "exactly the four services (never the simulator)"
    configmaps = {d["metadata"]["name"]: d for d in of_kind(docs, "ConfigMap")}
    pdbs = of_kind(docs, "PodDisruptionBudget")
    services = of_kind(docs, "Service")
    jobs = {service_of(j): j for j in of_kind(docs, "Job")}

    for name, deployment in deployments.items():
        package, settings = SERVICES[name]
        port = settings.model_fields["port"].default
        spec = deployment["spec"]
        pod = spec["template"]["spec"]
        labels = spec["template"]["metadata"]["labels"]
        assert selects(spec["selector"]["matchLabels"], labels)
        assert ("replicas" in spec) == expect_replicas, name
        container = container_of(deployment)
        assert container["command"] == ["python", "-m", package], name
        assert [p["containerPort"] for p in container["ports"]] == [port], name

        # probes
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready", name
        assert container["startupProbe"]["httpGet"]["path"] == "/health/live", name
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert container[probe]["httpGet"]["port"] in ("http", port), (name, probe)

        # resources
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][bound]), (name, bound)

        # security: non-root uid 10001, read-only root, /tmp writable
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert len(tmp) == 1, name
        volume = next(v for v in pod["volumes"] if v["name"] == tmp[0]["name"])
        assert "emptyDir" in volume, name

        # configuration: ConfigMap + Secret, migrations by the Job, time to shut down cleanly
        refs = [e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e]
        assert len(refs) == 1, name
        assert refs[0] in configmaps, name
        config = configmaps[refs[0]]["data"]
        assert config["RUN_MIGRATIONS"] == "false", name
        assert int(config["PORT"]) == port, name
        graceful = float(config.get("GRACEFUL_TIMEOUT", GRACEFUL_TIMEOUT))
        assert pod["terminationGracePeriodSeconds"] > graceful, name
        assert secret_keys(container) == SECRETS[name], name
        assert not SECRETS[name] & set(config), f"{name}: a secret in the ConfigMap"

        # exactly one PDB keeps one pod up, and it never counts the migration pod
        covering = [p for p in pdbs if selects(p["spec"]["selector"]["matchLabels"], labels)]
        assert len(covering) == 1, f"{name}: {len(covering)} PDBs select it"
        assert covering[0]["spec"]["minAvailable"] == 1

        # a Service in front of it
        fronting = [s for s in services if selects(s["spec"]["selector"], labels)]
        assert len(fronting) == 1, name
        assert fronting[0]["spec"]["ports"][0]["targetPort"] in ("http", port)

        # the migration Job
        assert name in jobs, f"{name}: no migration Job"
        job = jobs[name]
        job_container = container_of(job)
        assert job_container["command"] == ["python", "-m", package, "migrate"], name
        assert job_container["image"] == container["image"], name
        assert "DATABASE_URL" in secret_keys(job_container), name
        job_labels = job["spec"]["template"]["metadata"]["labels"]
        assert not selects(spec["selector"]["matchLabels"], job_labels), "Job pod in the set"
        assert not any(selects(p["spec"]["selector"]["matchLabels"], job_labels) for p in pdbs)
        assert not any(selects(s["spec"]["selector"], job_labels) for s in services)
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        assert job_container["securityContext"]["readOnlyRootFilesystem"] is True

    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment"
        assert target["name"] in {d["metadata"]["name"] for d in deployments.values()}
    for ingress in of_kind(docs, "Ingress"):
        zoom = deployments["zoom-bridge"]["metadata"]["name"]
        for rule in ingress["spec"]["rules"]:
            paths = rule["http"]["paths"]
            assert "/v1/zoom/webhooks" in {p["path"] for p in paths}
            assert {p["backend"]["service"]["name"] for p in paths} == {zoom}


def documented_secrets() -> dict[str, set[str]]:
    """The Secrets deploy/k8s/README.md tells operators to create: name -> keys."""
    text = (K8S / "README.md").read_text()
    secrets: dict[str, set[str]] = {}
    for block in re.split(r"(?=kubectl -n \S+ create secret generic )", text)[1:]:
        command = block.split("```", 1)[0]
        name = command.split("create secret generic ", 1)[1].split()[0]
        secrets[name] = set(re.findall(r"--from-literal=([A-Z0-9_]+)=", command))
    return secrets


def pod_specs(docs: list[Doc]) -> list[tuple[Doc, Doc]]:
    """(workload, pod template) for every Deployment and Job."""
    return [(d, d["spec"]["template"]) for d in docs if d["kind"] in ("Deployment", "Job")]


def named(doc: Doc) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def check_references(docs: list[Doc]) -> None:
    """Every name one object uses to point at another resolves in the rendered output (or, for
    Secrets, which are never in git, in the README's instructions), and selectors select."""
    docs = [d for d in docs if d.get("kind") != "Kustomization"]
    names = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs}
    secrets = documented_secrets()
    deployments = of_kind(docs, "Deployment")

    def exists(kind: str, namespace: str | None, name: str) -> bool:
        return (kind, namespace, name) in names

    for workload, template in pod_specs(docs):
        where = named(workload)
        namespace = workload["metadata"].get("namespace")
        pod = template["spec"]
        account = pod.get("serviceAccountName")
        if account is not None:
            assert exists("ServiceAccount", namespace, account), f"{where}: no SA {account!r}"
        for container in pod["containers"]:
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    ref = source["configMapRef"]["name"]
                    assert exists("ConfigMap", namespace, ref), f"{where}: no ConfigMap {ref!r}"
                if "secretRef" in source:
                    ref = source["secretRef"]["name"]
                    assert ref in secrets, f"{where}: Secret {ref!r} is not in the README"
            for env in container.get("env", []):
                value_from = env.get("valueFrom", {})
                if "configMapKeyRef" in value_from:
                    ref = value_from["configMapKeyRef"]
                    assert exists("ConfigMap", namespace, ref["name"]), (where, env["name"])
                if "secretKeyRef" in value_from:
                    ref = value_from["secretKeyRef"]
                    assert ref["name"] in secrets, f"{where}: Secret {ref['name']!r} undocumented"
                    assert ref["key"] in secrets[ref["name"]], (
                        f"{where}: key {ref['key']!r} is not in Secret {ref['name']!r}"
                    )
            mounts = {m["name"] for m in container.get("volumeMounts", [])}
            assert mounts <= {v["name"] for v in pod.get("volumes", [])}, where
        # the pod's own selector (Deployment) picks its template
        if workload["kind"] == "Deployment":
            assert selects(
                workload["spec"]["selector"]["matchLabels"], template["metadata"]["labels"]
            )

    for deployment in deployments:
        template = deployment["spec"]["template"]
        port = container_of(deployment)["ports"][0]["containerPort"]
        annotations = template["metadata"].get("annotations", {})
        if "prometheus.io/port" in annotations:
            assert int(annotations["prometheus.io/port"]) == port, named(deployment)

    def selected(selector: dict[str, str], namespace: str | None) -> list[Doc]:
        return [
            d
            for d in deployments
            if d["metadata"].get("namespace") == namespace
            and selects(selector, d["spec"]["template"]["metadata"]["labels"])
        ]

    for service in of_kind(docs, "Service"):
        namespace = service["metadata"].get("namespace")
        targets = selected(service["spec"]["selector"], namespace)
        assert len(targets) == 1, f"{named(service)} selects {len(targets)} Deployments"
        ports = container_of(targets[0])["ports"]
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert target in {p.get("name") for p in ports} | {p["containerPort"] for p in ports}
    for pdb in of_kind(docs, "PodDisruptionBudget"):
        namespace = pdb["metadata"].get("namespace")
        targets = selected(pdb["spec"]["selector"]["matchLabels"], namespace)
        assert len(targets) == 1, f"{named(pdb)} selects {len(targets)} Deployments"
    for job in of_kind(docs, "Job"):
        namespace = job["metadata"].get("namespace")
        owner = [d for d in deployments if service_of(d) == service_of(job)]
        assert len(owner) == 1, named(job)
        server, migrate = container_of(owner[0]), container_of(job)
        assert migrate["image"] == server["image"], f"{named(job)} migrates another image"

        def secret_refs(container: Doc) -> dict[str, tuple[str, str]]:
            return {
                e["name"]: (
                    e["valueFrom"]["secretKeyRef"]["name"],
                    e["valueFrom"]["secretKeyRef"]["key"],
                )
                for e in container.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})
            }

        job_refs, server_refs = secret_refs(migrate), secret_refs(server)
        assert "DATABASE_URL" in job_refs, named(job)
        for variable, ref in job_refs.items():  # the same database the server uses
            assert server_refs.get(variable) == ref, (named(job), variable)
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert exists(target["kind"], hpa["metadata"].get("namespace"), target["name"]), named(hpa)
    for ingress in of_kind(docs, "Ingress"):
        namespace = ingress["metadata"].get("namespace")
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                fronting: Doc | None = next(
                    (
                        s
                        for s in of_kind(docs, "Service")
                        if s["metadata"]["name"] == backend["name"]
                        and s["metadata"].get("namespace") == namespace
                    ),
                    None,
                )
                assert fronting is not None, f"{named(ingress)}: no Service {backend['name']!r}"
                port = backend["port"]
                assert port.get("name") in {p.get("name") for p in fronting["spec"]["ports"]} or (
                    port.get("number") in {p["port"] for p in fronting["spec"]["ports"]}
                ), named(ingress)


# --- Kubernetes: plain manifests and Kustomize --------------------------------------------------


@pytest.mark.parametrize("path", plain_manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_plain_manifest_is_schema_valid(path: Path) -> None:
    schema_check(load_docs(path.read_text()))


def test_base_manifests() -> None:
    check_workloads(base_docs())
    check_references(base_docs())


def test_production_overlay_renders_and_is_valid() -> None:
    docs = render_kustomize(OVERLAY)
    schema_check(docs)
    check_workloads(docs, expect_replicas=False)  # the HPAs own the replica count
    check_references(docs)
    assert {d["metadata"].get("namespace") for d in docs} == {"training-events"}
    assert len(of_kind(docs, "HorizontalPodAutoscaler")) == len(SERVICES)
    assert len(of_kind(docs, "Ingress")) == 1


def _first(docs: list[Doc], kind: str, service: str = "catalog") -> Doc:
    return next(d for d in of_kind(docs, kind) if service_of(d) == service)


def _env_ref(container: Doc, variable: str) -> Doc:
    entry = next(e for e in container["env"] if e["name"] == variable)
    ref: Doc = entry["valueFrom"]["secretKeyRef"]
    return ref


def _break_service_account(docs: list[Doc]) -> None:
    _first(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] = "te-catalog"


def _break_config_map_ref(docs: list[Doc]) -> None:
    container = container_of(_first(docs, "Deployment"))
    container["envFrom"][0]["configMapRef"]["name"] = "catalog-config"


def _break_secret_name(docs: list[Doc]) -> None:
    _env_ref(container_of(_first(docs, "Deployment")), "AMQP_URL")["name"] = "catalog-secrets"


def _break_secret_key(docs: list[Doc]) -> None:
    _env_ref(container_of(_first(docs, "Deployment")), "JWT_SECRET")["key"] = "jwt-secret"


def _break_service_selector(docs: list[Doc]) -> None:
    _first(docs, "Service")["spec"]["selector"]["app.kubernetes.io/name"] = "catalog-server"


def _break_service_port(docs: list[Doc]) -> None:
    _first(docs, "Service")["spec"]["ports"][0]["targetPort"] = "web"


def _break_pdb_selector(docs: list[Doc]) -> None:
    _first(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"]["app"] = "catalog"


def _break_job_image(docs: list[Doc]) -> None:
    container_of(_first(docs, "Job"))["image"] = "registry.example.com/training-events/cat:0.1.0"


def _break_job_database(docs: list[Doc]) -> None:
    _env_ref(container_of(_first(docs, "Job")), "DATABASE_URL")["name"] = "training-events-cat"


@pytest.mark.parametrize(
    "breakage",
    [
        _break_service_account,
        _break_config_map_ref,
        _break_secret_name,
        _break_secret_key,
        _break_service_selector,
        _break_service_port,
        _break_pdb_selector,
        _break_job_image,
        _break_job_database,
    ],
    ids=lambda f: f.__name__.removeprefix("_break_"),
)
def test_a_dangling_reference_fails_the_check(breakage: Callable[[list[Doc]], None]) -> None:
    """The reference check is not vacuous: each kind of broken name is caught."""
    docs = copy.deepcopy(base_docs())
    check_references(docs)
    breakage(docs)
    with pytest.raises(AssertionError):
        check_references(docs)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_base_renders_alone(service: str) -> None:
    docs = render_kustomize(K8S / "base" / service)
    schema_check(docs)
    assert {service_of(d) for d in docs} == {service}
    check_references(docs)


# --- RabbitMQ definitions ----------------------------------------------------------------------


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "deploy_rabbitmq_generate", DEPLOY / "rabbitmq" / "generate.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def definitions() -> Doc:
    data: Doc = json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text())
    return data


def test_definitions_match_the_generator() -> None:
    committed = (DEPLOY / "rabbitmq" / "definitions.json").read_text()
    assert committed == load_generator().render(), (
        "deploy/rabbitmq/definitions.json is stale: run `uv run python deploy/rabbitmq/generate.py`"
    )


def test_definitions_cover_the_topology(definitions: Doc) -> None:
    topology = Topology()
    assert [v["name"] for v in definitions["vhosts"]] == ["/"]
    exchanges = {e["name"]: e for e in definitions["exchanges"]}
    assert exchanges[topology.exchange.name]["type"] == "topic"
    assert exchanges[topology.dead_letter_exchange.name]["type"] == "direct"
    assert all(e["durable"] for e in exchanges.values())
    always = declared_by(None)
    assert INTEGRATIONS not in always  # it declares its own queues (te_shared.topology.OPTIONAL)
    assert {q["name"] for q in definitions["queues"]} == set(topology.all_queue_names(always))
    assert len(definitions["queues"]) == sum(len(CONSUMES[s]) for s in always) + len(always)


def test_definitions_only_quorum_queues_with_dead_lettering(definitions: Doc) -> None:
    topology = Topology()
    dead_letter = {topology.dead_letter_queue(s).name for s in CONSUMES}
    for queue in definitions["queues"]:
        args = queue["arguments"]
        assert queue["durable"], queue["name"]
        assert not queue["auto_delete"], queue["name"]
        assert args["x-queue-type"] == "quorum", queue["name"]
        if queue["name"] in dead_letter:
            continue  # the end of the line: nothing dead-letters out of a dead-letter queue
        assert args["x-dead-letter-exchange"] == topology.dead_letter_exchange.name
        assert isinstance(args["x-delivery-limit"], int)
        assert args["x-delivery-limit"] >= 1
        assert args["x-dead-letter-routing-key"] in CONSUMES


def test_definitions_bindings_point_at_existing_objects(definitions: Doc) -> None:
    exchanges = {e["name"] for e in definitions["exchanges"]}
    queues = {q["name"] for q in definitions["queues"]}
    bound = set()
    for binding in definitions["bindings"]:
        assert binding["source"] in exchanges, binding
        assert binding["destination_type"] == "queue"
        assert binding["destination"] in queues, binding
        bound.add(binding["destination"])
    assert bound == queues, "every queue is bound"
    dlx = Topology().dead_letter_exchange.name
    dlq_keys = {(b["destination"], b["routing_key"]) for b in definitions["bindings"]}
    for service in declared_by(None):
        dlq = Topology().dead_letter_queue(service).name
        assert (dlq, service) in dlq_keys
        assert any(b["source"] == dlx and b["destination"] == dlq for b in definitions["bindings"])


def test_policies_mirror_the_queue_arguments_for_exactly_the_consumer_queues(
    definitions: Doc,
) -> None:
    """One policy per consuming service: it matches that service's queues and no others (never
    a dead-letter queue), with the dead-lettering the queues declare: the ones in the file and
    those integrations declares at its first start."""
    topology = Topology()
    declared = {
        topology.queue(s, m).name: dict(topology.queue(s, m).arguments or {})
        for s in CONSUMES
        for m in CONSUMES[s]
    }
    in_file = {q["name"]: q["arguments"] for q in definitions["queues"]}
    dead_letter = {topology.dead_letter_queue(s).name for s in CONSUMES}
    assert {n: a for n, a in in_file.items() if n not in dead_letter} == {
        n: a for n, a in declared.items() if n in in_file
    }
    queues = {**declared, **{name: {} for name in dead_letter}}
    policies = definitions["policies"]
    assert [p["name"] for p in policies] == [f"{s}-dead-lettering" for s in CONSUMES]
    covered: list[str] = []
    for service, policy in zip(CONSUMES, policies, strict=True):
        assert policy["apply-to"] == "queues"
        assert policy["vhost"] == "/"
        matched = {name for name in queues if re.search(policy["pattern"], name)}
        assert matched == {topology.queue_name(service, m) for m in CONSUMES[service]}, service
        covered += matched
        for name in matched:
            arguments = queues[name]
            assert policy["definition"] == {
                "dead-letter-exchange": arguments["x-dead-letter-exchange"],
                "dead-letter-routing-key": arguments["x-dead-letter-routing-key"],
                "delivery-limit": arguments["x-delivery-limit"],
            }
    assert sorted(covered) == sorted(declared), "each queue has one policy"


RABBITMQCTL = shutil.which("rabbitmqctl")


async def rabbitmqctl(*args: str) -> None:
    assert RABBITMQCTL is not None
    proc = await asyncio.create_subprocess_exec(
        RABBITMQCTL, "-q", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, (args, out, err)


async def _deliveries_until_dead_lettered(ns: RabbitNamespace, policy_limit: int) -> int:
    """Declare the topology as a service does, apply the generated policy retuned to
    ``policy_limit``, then nack one message until RabbitMQ dead-letters it."""
    assert RABBITMQCTL is not None
    topology = ns.topology
    [policy] = [
        p
        for p in load_generator().build_definitions(topology)["policies"]
        if p["name"].endswith(f"{REGISTRATION}-dead-lettering")
    ]
    definition = {**policy["definition"], "delivery-limit": policy_limit}
    await rabbitmqctl(
        "set_policy",
        "--apply-to",
        policy["apply-to"],
        "--priority",
        str(policy["priority"]),
        policy["name"],
        policy["pattern"],
        json.dumps(definition),
    )
    try:
        broker = RabbitBroker(ns.amqp_url)
        await broker.connect()
        try:
            await topology.declare(broker)  # the queue arguments the services declare
        finally:
            await broker.stop()
        connection = await aio_pika.connect(ns.amqp_url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.get_queue(topology.queue_name(REGISTRATION, c.SessionCreated))
            dlq = await channel.get_queue(topology.dead_letter_queue(REGISTRATION).name)
            await channel.default_exchange.publish(aio_pika.Message(b"poison"), queue.name)
            deliveries = 0
            deadline = asyncio.get_running_loop().time() + 30
            while asyncio.get_running_loop().time() < deadline:
                message = await queue.get(fail=False)
                if message is not None:
                    deliveries += 1
                    await message.nack(requeue=True)
                    continue
                dead = await dlq.get(fail=False, no_ack=True)
                if dead is not None:
                    assert dead.body == b"poison"
                    return deliveries
                await asyncio.sleep(0.1)
            raise AssertionError(f"not dead-lettered after {deliveries} deliveries")
    finally:
        await rabbitmqctl("clear_policy", policy["name"])


@pytest.mark.skipif(RABBITMQCTL is None, reason="rabbitmqctl is not installed")
@pytest.mark.parametrize(
    ("policy_limit", "deliveries"),
    [(2, 3), (8, 6)],
    ids=["policy-lowers-the-limit", "argument-caps-the-policy"],
)
async def test_the_generated_policy_loads_and_the_lower_delivery_limit_applies(
    fresh_rabbit: RabbitNamespace, policy_limit: int, deliveries: int
) -> None:
    """What README.md says about precedence, on the real broker: the effective delivery limit
    is the lower of the policy's and the queue argument's (AMQP_DELIVERY_LIMIT, 5); a message
    is dead-lettered on the delivery after the limit."""
    assert fresh_rabbit.topology.delivery_limit == 5
    assert await _deliveries_until_dead_lettered(fresh_rabbit, policy_limit) == deliveries


def test_definitions_hold_no_credentials(definitions: Doc) -> None:
    assert not definitions.get("users")
    assert not definitions.get("permissions")
    assert "guest" not in json.dumps(definitions)


def test_rabbitmq_conf_loads_the_definitions() -> None:
    conf = (DEPLOY / "rabbitmq" / "rabbitmq.conf").read_text()
    settings = [
        line.split("=", 1)[0].strip()
        for line in conf.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert "load_definitions" in settings
    assert "default_queue_type" in settings


# --- docker-compose ----------------------------------------------------------------------------


def test_compose_services_have_healthchecks_and_conditional_dependencies() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services: dict[str, Doc] = compose["services"]
    assert set(SERVICES) <= set(services)
    for name, service in services.items():
        assert "test" in service.get("healthcheck", {}), f"{name}: no healthcheck"
        depends = service.get("depends_on")
        if depends is None:
            continue  # infrastructure with nothing to wait for
        assert isinstance(depends, dict), f"{name}: depends_on without conditions"
        for dependency, how in depends.items():
            assert dependency in services, (name, dependency)
            assert how.get("condition") == "service_healthy", (name, dependency)
    for name in SERVICES:
        assert services[name].get("depends_on"), f"{name} waits for nothing"


# --- images: one Dockerfile, a service per build arguments ---------------------------------------

DOCKERFILE = DEPLOY / "Dockerfile"
#: every image compose builds: compose service -> (directory under services/, package, port)
IMAGES: dict[str, tuple[str, str, int]] = {
    name: (name, package, int(settings.model_fields["port"].default))
    for name, (package, settings) in SERVICES.items()
} | {"zoom-sim": ("zoom-sim", "zoom_sim", 8099)}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_every_service_is_built_from_the_one_dockerfile() -> None:
    assert not list((ROOT / "services").glob("*/Dockerfile")), "a per-service copy is back"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name, (directory, package, port) in IMAGES.items():
        build = compose[name]["build"]
        assert build["context"] == "."
        assert (ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        assert build["args"] == {"SERVICE": directory, "PACKAGE": package, "PORT": str(port)}
        project = tomllib.loads((ROOT / "services" / directory / "pyproject.toml").read_text())
        assert project["project"]["name"] == f"te-{directory}", "uv sync --package te-$SERVICE"
        assert (ROOT / "services" / directory / package / "__main__.py").exists(), name
        assert f"{port}:{port}" in compose[name]["ports"], name


def test_the_dockerfile_builds_a_locked_non_root_image_with_a_healthcheck() -> None:
    instructions = dockerfile_instructions()
    arguments = {args.split("=")[0] for kind, args in instructions if kind == "ARG"}
    assert {"SERVICE", "PACKAGE", "PORT"} <= arguments
    runs = " ".join(args for kind, args in instructions if kind == "RUN")
    assert 'uv sync --locked --no-dev --no-editable --package "te-${SERVICE}"' in runs
    final = instructions[max(i for i, (kind, _) in enumerate(instructions) if kind == "FROM") :]
    [user] = [args for kind, args in final if kind == "USER"]
    assert user not in ("root", "0")
    assert "--uid 10001" in runs, "the uid the Kubernetes manifests run as"
    [healthcheck] = [args for kind, args in final if kind == "HEALTHCHECK"]
    assert "/health/live" in healthcheck
    assert "PORT" in healthcheck
    [command] = [json.loads(args) for kind, args in final if kind == "CMD"]
    assert command[-1].startswith("exec python -m "), "exec: the service itself gets SIGTERM"


def test_the_build_stage_reads_the_whole_workspace_and_installs_no_test_kit() -> None:
    """uv reads the whole workspace even to install one package, so the build stage copies every
    member (the test kit too: without it ``uv sync --locked`` fails). The kit is a development
    dependency only: no product package depends on it, so ``--no-dev`` keeps it and pytest out
    of every image."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    copied = {
        args.split()[0]
        for kind, args in dockerfile_instructions()
        if kind == "COPY" and not args.startswith("--from")
    }
    for member in root["tool"]["uv"]["workspace"]["members"]:
        assert member.split("/")[0] in copied, f"the build stage lacks the member {member}"
    assert "te-testing" in root["dependency-groups"]["dev"]
    assert "te-testing" not in root["project"]["dependencies"]
    for project in [ROOT / "shared" / "pyproject.toml", *ROOT.glob("services/*/pyproject.toml")]:
        needs = tomllib.loads(project.read_text())["project"]["dependencies"]
        assert not [d for d in needs if d.startswith(("te-testing", "pytest"))], project


def test_the_product_imports_no_test_library() -> None:
    """What an image runs (te_shared and each service's package, not their tests) imports
    neither pytest nor the test kit: the kit lives outside the product, in testing/."""
    packages = [ROOT / "shared" / "te_shared"] + [
        ROOT / "services" / directory / package for directory, package, _ in IMAGES.values()
    ]
    assert all(package.is_dir() for package in packages), packages
    offending = []
    for path in (p for package in packages for p in package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offending += [
                f"{path.relative_to(ROOT)}: {name}"
                for name in names
                if name.split(".")[0] in ("pytest", "te_testing", "testcontainers")
            ]
    assert not offending
