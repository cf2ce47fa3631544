#!/usr/bin/env python3
"""Validate deploy/kubernetes offline: run by `make ops-check` with the venv
that holds kubernetes-validate (var/kube-venv).

1. kustomization.yaml lists every manifest here (so none escapes 2.).
2. Every object against its schema, for each Kubernetes version in VERSIONS:
   built-in kinds with kubernetes-validate's schemas in strict mode (unknown
   fields refused); ServiceMonitor and PrometheusRule, which have no built-in
   schema, against schemas/*.json (written from the Prometheus Operator's CRDs;
   their $comment says what they cover). A kind with no schema fails.
3. What no schema can see: the objects fit each other and the image (selectors,
   ports, the config mount at the image's config path and never by subPath,
   the grace period against server.drain_ms, the restricted security context,
   plugins.cache_dir on a writable emptyDir), and the ConfigMap's sluice.toml
   equals docker/gateway/sluice.toml except for ALLOWED_DIFFERENCES.
(The PrometheusRule's groups against alerts.yml: gen-rules.py --check.)
"""

import json
import posixpath
import re
import sys
import tomllib
from pathlib import Path

import jsonschema
import yaml
from kubernetes_validate import utils as kv

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# The oldest Kubernetes these manifests claim, and the newest the validator knows.
VERSIONS = ["1.30", kv.latest_version()]
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring-v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule-monitoring-v1.json",
}
# docker/gateway/sluice.toml and the ConfigMap's copy may differ only here.
ALLOWED_DIFFERENCES = {("redis", "url"), ("plugins", "cache_dir")}
DEFAULT_DRAIN_MS = 15000

errors = []


def fail(where, message):
    errors.append(f"{where}: {message}")


def load_all():
    kustomization = yaml.safe_load((HERE / "kustomization.yaml").read_text())
    listed = kustomization.get("resources", [])
    present = sorted(p.name for p in HERE.glob("*.yaml") if p.name != "kustomization.yaml")
    for name in sorted(set(present) - set(listed)):
        fail(name, "not listed in kustomization.yaml's resources (so not applied nor validated)")
    for name in sorted(set(listed) - set(present)):
        fail("kustomization.yaml", f"lists {name}, which is not in deploy/kubernetes/")
    objects = []
    for name in listed:
        if (HERE / name).is_file():
            for doc in yaml.safe_load_all((HERE / name).read_text()):
                if doc:
                    objects.append((name, doc))
    return objects


def validate_schemas(objects):
    counted = {}
    for name, doc in objects:
        key = (doc.get("apiVersion"), doc.get("kind"))
        where = f"{name}: {key[1]}/{doc.get('metadata', {}).get('name')}"
        if key in CRD_SCHEMAS:
            schema = json.loads((HERE / "schemas" / CRD_SCHEMAS[key]).read_text())
            jsonschema.Draft202012Validator.check_schema(schema)
            for e in jsonschema.Draft202012Validator(schema).iter_errors(doc):
                fail(where, f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}")
            counted[key[1]] = "schemas/" + CRD_SCHEMAS[key]
            continue
        for version in VERSIONS:
            try:
                kv.validate(doc, version, strict=True)
            except kv.ValidationError as e:
                fail(where, f"Kubernetes {version}: {'.'.join(map(str, e.path))}: {e.message}")
            except kv.SchemaNotFoundError as e:
                fail(where, e.message)
        counted[key[1]] = "Kubernetes " + " and ".join(VERSIONS) + ", strict"
    for kind, against in sorted(counted.items()):
        print(f"  {kind}: valid against {against}")


def by_kind(objects, kind):
    found = [doc for _, doc in objects if doc.get("kind") == kind]
    if len(found) != 1:
        fail("deploy/kubernetes", f"expected one {kind}, found {len(found)}")
        return {}
    return found[0]


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def image_config_path():
    """The config path the image's CMD serves, made absolute by its WORKDIR."""
    text = (ROOT / "docker" / "Dockerfile").read_text()
    workdir = re.findall(r"^WORKDIR\s+(\S+)", text, re.M)[-1]
    cmd = json.loads(re.findall(r"^CMD\s+(\[.*\])", text, re.M)[-1])
    return posixpath.join(workdir, cmd[cmd.index("--config") + 1]), cmd


def check_consistency(objects):
    deploy, service = by_kind(objects, "Deployment"), by_kind(objects, "Service")
    configmap, pdb = by_kind(objects, "ConfigMap"), by_kind(objects, "PodDisruptionBudget")
    hpa, monitor = by_kind(objects, "HorizontalPodAutoscaler"), by_kind(objects, "ServiceMonitor")
    if not all([deploy, service, configmap, pdb, hpa, monitor]):
        return
    d = "deployment.yaml"
    pod = deploy["spec"]["template"]["spec"]
    pod_labels = deploy["spec"]["template"]["metadata"]["labels"]
    if not matches(deploy["spec"]["selector"]["matchLabels"], pod_labels):
        fail(d, "the selector does not match the pod template's labels")
    if "replicas" in deploy["spec"]:
        fail(d, "sets replicas, which the HorizontalPodAutoscaler owns")
    if not matches(service["spec"]["selector"], pod_labels):
        fail("service.yaml", "the selector matches no gateway pod")
    if not matches(pdb["spec"]["selector"]["matchLabels"], pod_labels):
        fail("pdb.yaml", "the selector matches no gateway pod")
    target = hpa["spec"]["scaleTargetRef"]
    if (target["kind"], target["name"]) != ("Deployment", deploy["metadata"]["name"]):
        fail("hpa.yaml", f"scales {target['kind']}/{target['name']}, not the gateway's Deployment")
    if not matches(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"]):
        fail("servicemonitor.yaml", "the selector does not match the Service's labels")
    service_ports = {p.get("name") for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        if endpoint.get("port") not in service_ports:
            fail("servicemonitor.yaml", f"port {endpoint.get('port')!r} is not a port of the Service")

    # The restricted security context the image is built for.
    ctx = pod.get("securityContext", {})
    want = {"runAsNonRoot": True, "runAsUser": 10001}
    for k, v in want.items():
        if ctx.get(k) != v:
            fail(d, f"securityContext.{k} is {ctx.get(k)!r}, not {v!r}")
    if ctx.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        fail(d, "securityContext.seccompProfile.type is not RuntimeDefault")
    containers = pod["containers"] + pod.get("initContainers", [])
    for c in containers:
        sc = c.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem") is not True or sc.get("allowPrivilegeEscalation") is not False \
                or sc.get("capabilities", {}).get("drop") != ["ALL"]:
            fail(d, f"container {c['name']}: needs readOnlyRootFilesystem, no privilege escalation, capabilities drop ALL")
        if "limits" not in c.get("resources", {}) or "requests" not in c.get("resources", {}):
            fail(d, f"container {c['name']}: needs resource requests and limits")
    gateway = next((c for c in pod["containers"] if c["name"] == "sluice"), None)
    if gateway is None:
        fail(d, "no container named sluice")
        return
    for probe, path in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]:
        if gateway.get(probe, {}).get("httpGet", {}).get("path") != path:
            fail(d, f"{probe} does not ask {path}")

    # The config: a directory mount of the ConfigMap where the image's CMD reads it.
    config_path, cmd = image_config_path()
    args = gateway.get("args", cmd)
    served = posixpath.join("/opt/sluice", args[args.index("--config") + 1])
    if served != config_path:
        fail(d, f"serves {served}, the image's CMD serves {config_path}")
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = gateway.get("volumeMounts", [])
    config_mounts = [m for m in mounts if volumes.get(m["name"], {}).get("configMap", {}).get("name")
                     == configmap["metadata"]["name"]]
    if [m["mountPath"] for m in config_mounts] != [posixpath.dirname(config_path)]:
        fail(d, f"the ConfigMap must be mounted once, at {posixpath.dirname(config_path)}")
    for m in mounts:
        if "subPath" in m or "subPathExpr" in m:
            fail(d, f"volumeMount {m['name']} uses subPath: such a mount never sees an update")
    filename = posixpath.basename(config_path)
    if filename not in configmap.get("data", {}):
        fail("configmap.yaml", f"has no {filename}")
        return
    config = tomllib.loads(configmap["data"][filename])
    base = posixpath.dirname(config_path)

    def mount_of(path):
        hits = [m for m in mounts if path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")]
        return max(hits, key=lambda m: len(m["mountPath"]), default=None)

    plugins_dir = posixpath.normpath(posixpath.join(base, config["plugins"]["dir"]))
    if mount_of(plugins_dir) is None or mount_of(plugins_dir)["mountPath"] != plugins_dir:
        fail(d, f"plugins.dir ({plugins_dir}) is not a mounted volume")
    cache_dir = config["plugins"].get("cache_dir")
    if cache_dir is not None:
        cache_dir = posixpath.normpath(posixpath.join(base, cache_dir))
        m = mount_of(cache_dir)
        if m is None or "emptyDir" not in volumes[m["name"]] or m.get("readOnly"):
            fail(d, f"plugins.cache_dir ({cache_dir}) is not on a writable emptyDir (the root filesystem is read-only)")
        elif m["mountPath"] == cache_dir:
            fail(d, f"plugins.cache_dir ({cache_dir}) is an emptyDir's root (mode 0777): the cache trusts only a folder it made itself; use a folder inside it")

    # Drain: preStop, then server.drain_ms, within the grace period.
    drain_s = config.get("server", {}).get("drain_ms", DEFAULT_DRAIN_MS) / 1000
    pre_stop = gateway.get("lifecycle", {}).get("preStop", {})
    sleep_s = float(pre_stop.get("sleep", {}).get("seconds", 0))
    command = pre_stop.get("exec", {}).get("command", [])
    if command[:1] == ["sleep"]:
        sleep_s = float(command[1])
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if not grace > sleep_s + drain_s:
        fail(d, f"terminationGracePeriodSeconds {grace} does not exceed the preStop's {sleep_s:g} s plus server.drain_ms ({drain_s:g} s)")

    # The ConfigMap's config is docker/gateway/sluice.toml's, adapted.
    compose = tomllib.loads((ROOT / "docker" / "gateway" / "sluice.toml").read_text())

    def flat(table, prefix=()):
        for k, v in table.items():
            if isinstance(v, dict):
                yield from flat(v, prefix + (k,))
            else:
                yield prefix + (k,), v

    ours, theirs = dict(flat(config)), dict(flat(compose))
    for key in sorted(set(ours) | set(theirs)):
        if key not in ALLOWED_DIFFERENCES and ours.get(key) != theirs.get(key):
            fail("configmap.yaml", f"{'.'.join(key)} = {ours.get(key)!r}, docker/gateway/sluice.toml has {theirs.get(key)!r}")
    print(f"  consistency: selectors, ports, probes, security context, config mount at {posixpath.dirname(config_path)}, "
          f"grace {grace} s > {sleep_s:g} s + {drain_s:g} s, config = docker/gateway/sluice.toml but {sorted('.'.join(k) for k in ALLOWED_DIFFERENCES)}")


def main():
    objects = load_all()
    print(f"deploy/kubernetes: {len(objects)} objects")
    validate_schemas(objects)
    check_consistency(objects)
    if errors:
        print("\n".join(errors), file=sys.stderr)
        sys.exit(f"deploy/kubernetes: {len(errors)} problem(s)")


if __name__ == "__main__":
    main()
