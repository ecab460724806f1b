"""Checks for deploy/check.sh that no packaged tool does.

Usage: python check_helpers.py COMMAND PATH [OPTION]; prints problems and
exits 1 when there are any. Commands: toml, configmap-toml, compose-refs,
kustomization, dockerfile, otel, prometheus, consistency.

The fangpind configuration rules mirror crates/fangpin-server/src/config.rs
(keys, ranges, log formats); `fangpind --check-config` is the authority and
check.sh runs it too when a binary is available.
"""

from __future__ import annotations

import ipaddress
import re
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

# Key -> (type, range or allowed values); mirrors config.rs.
TOP_KEYS = {
    "listen": str,
    "database_url": str,
    "dev": bool,
    "server": dict,
    "log": dict,
    "tls": dict,
    "auth": dict,
    "personal_data": dict,
    "calendar": dict,
    "evidence": dict,
    "notice": dict,
    "console": dict,
}
# Sections of paths and names: every value a string, except as listed.
STRING_SECTIONS = {
    "tls": {"cert_file", "key_file", "client_ca_file"},
    "auth": {"jwks_file", "issuer", "audience", "leeway_secs"},
    "personal_data": {"key_file"},
    "calendar": {"file"},
    "evidence": {"dir"},
    "notice": {"font"},
    "console": {"oidc_client_id", "oidc_scope"},
}
REQUIRED_UNLESS_DEV = {
    "tls": {"cert_file", "key_file"},
    "auth": {"jwks_file", "issuer", "audience"},
    "personal_data": {"key_file"},
}
SERVER_KEYS = {
    "request_timeout_secs": (1, 600),
    "shutdown_grace_secs": (1, 300),
    "max_connections": (1, 512),
}
# server.* keys that are addresses, not numbers.
SERVER_ADDRESS_KEYS = {"health_listen"}
LOG_KEYS = {"filter": str, "format": ("text", "json")}
# The server's fixed wind-down after the grace period (SHUTDOWN_WIND_DOWN in
# crates/fangpin-server/src/lib.rs).
WIND_DOWN_SECS = 5
DEFAULT_GRACE_SECS = 20

UID = 10001
GRPC_PORT = 50051
# The plaintext health-only listener (server.health_listen) the kubelet's
# grpc probes use, since they cannot speak TLS.
HEALTH_PORT = 50052
CONFIG_PATH = "/etc/fangpin/fangpind.toml"


class Problems(list):
    def add(self, msg: str) -> None:
        self.append(msg)


def load_yaml_docs(path: Path) -> list:
    with path.open(encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def load_yaml(path: Path):
    docs = load_yaml_docs(path)
    if len(docs) != 1:
        raise SystemExit(f"{path}: expected one YAML document, found {len(docs)}")
    return docs[0]


# ---------------------------------------------------------------- TOML


def is_ip_port(text: str) -> bool:
    host, _, port = text.rpartition(":")
    try:
        ipaddress.ip_address(host.strip("[]"))
        return 0 < int(port) < 65536
    except ValueError:
        return False


def check_fangpind_toml(text: str, where: str, p: Problems) -> dict:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        p.add(f"{where}: not TOML: {e}")
        return {}
    for key, value in doc.items():
        if key not in TOP_KEYS:
            p.add(f"{where}: unknown key {key!r} (fangpind refuses unknown keys)")
        elif not isinstance(value, TOP_KEYS[key]):
            p.add(f"{where}: {key} must be a {TOP_KEYS[key].__name__}")
    listen = doc.get("listen")
    if isinstance(listen, str) and not is_ip_port(listen):
        p.add(f"{where}: listen {listen!r} is not IP:PORT")
    url = doc.get("database_url")
    if isinstance(url, str) and not re.match(r"^(sqlite:|postgres://|postgresql://)", url):
        p.add(f"{where}: database_url must start with sqlite: or postgres://")
    for key, value in doc.get("server", {}).items():
        if key in SERVER_ADDRESS_KEYS:
            if not isinstance(value, str) or not is_ip_port(value):
                p.add(f"{where}: server.{key} {value!r} is not IP:PORT")
            elif isinstance(listen, str) and value.rpartition(":")[2] == listen.rpartition(":")[2]:
                p.add(f"{where}: server.{key} must use another port than listen")
            continue
        if key not in SERVER_KEYS:
            p.add(f"{where}: unknown key server.{key!r}")
            continue
        lo, hi = SERVER_KEYS[key]
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            p.add(f"{where}: server.{key} = {value!r} is not an integer in {lo}..={hi}")
    for key, value in doc.get("log", {}).items():
        if key not in LOG_KEYS:
            p.add(f"{where}: unknown key log.{key!r}")
        elif key == "format" and value not in LOG_KEYS["format"]:
            p.add(f"{where}: log.format = {value!r} is not one of text, json")
        elif key == "filter" and not isinstance(value, str):
            p.add(f"{where}: log.filter must be a string")
    for section, keys in STRING_SECTIONS.items():
        for key, value in doc.get(section, {}).items():
            if key not in keys:
                p.add(f"{where}: unknown key {section}.{key!r}")
            elif key == "leeway_secs":
                if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 300:
                    p.add(f"{where}: auth.leeway_secs = {value!r} is not an integer in 0..=300")
            elif not isinstance(value, str) or not value:
                p.add(f"{where}: {section}.{key} must be a non-empty string")
        if not doc.get("dev", False):
            for key in sorted(REQUIRED_UNLESS_DEV.get(section, set()) - set(doc.get(section, {}))):
                p.add(f"{where}: {section}.{key} is required unless dev = true")
    return doc


def configmap_toml(path: Path) -> str:
    cm = load_yaml(path)
    try:
        return cm["data"]["fangpind.toml"]
    except (KeyError, TypeError):
        raise SystemExit(f"{path}: no data.fangpind.toml")


def grace_of(doc: dict) -> int:
    return doc.get("server", {}).get("shutdown_grace_secs", DEFAULT_GRACE_SECS)


# ---------------------------------------------------------------- compose


def check_compose_refs(path: Path, p: Problems) -> None:
    doc = load_yaml(path)
    base = path.parent
    services = doc.get("services", {})
    volumes = set((doc.get("volumes") or {}).keys())
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        for dep in deps if isinstance(deps, (list, dict)) else []:
            if dep not in services:
                p.add(f"{name}: depends_on unknown service {dep!r}")
            elif isinstance(deps, dict):
                cond = deps[dep].get("condition")
                if cond == "service_healthy" and "healthcheck" not in services[dep]:
                    p.add(f"{name}: waits for {dep} healthy, but {dep} has no healthcheck")
        for vol in svc.get("volumes", []):
            src = vol.split(":", 1)[0] if isinstance(vol, str) else vol.get("source", "")
            if src.startswith((".", "/")):
                if not (base / src).exists():
                    p.add(f"{name}: bind-mount source {src} does not exist")
            elif src and src not in volumes:
                p.add(f"{name}: named volume {src!r} not declared under volumes:")
        build = svc.get("build")
        if isinstance(build, dict):
            ctx = (base / build.get("context", ".")).resolve()
            if not ctx.is_dir():
                p.add(f"{name}: build context {ctx} missing")
            dockerfile = ctx / build.get("dockerfile", "Dockerfile")
            if not dockerfile.is_file():
                p.add(f"{name}: dockerfile {dockerfile} missing")
        for port in svc.get("ports", []):
            if isinstance(port, str) and not port.startswith("127.0.0.1:"):
                p.add(f"{name}: port {port} is published beyond the host's loopback")


# ---------------------------------------------------------------- kustomize


def kustomization(dir_: Path, p: Problems) -> list[Path]:
    k = load_yaml(dir_ / "kustomization.yaml")
    listed = [dir_ / r for r in k.get("resources", [])]
    for r in listed:
        if not r.is_file():
            p.add(f"kustomization.yaml lists missing {r.name}")
    present = {f for f in dir_.glob("*.yaml") if f.name != "kustomization.yaml"}
    for f in sorted(present - set(listed)):
        p.add(f"{f.name} is not listed in kustomization.yaml resources")
    return listed


# ---------------------------------------------------------------- Dockerfile

INSTRUCTIONS = {
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM",
    "HEALTHCHECK", "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL",
    "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
}


def check_dockerfile(path: Path, p: Problems) -> dict:
    import dockerfile  # BuildKit's parser, compiled into the wheel

    try:
        cmds = dockerfile.parse_file(str(path))
    except dockerfile.GoParseError as e:
        p.add(f"{path}: does not parse: {e}")
        return {}
    stages: list[str] = []
    final: dict = {}
    seen_from = False
    for c in cmds:
        if c.cmd.upper() not in INSTRUCTIONS:
            p.add(f"line {c.start_line}: unknown instruction {c.cmd}")
            continue
        cmd = c.cmd.upper()
        if not seen_from and cmd not in ("FROM", "ARG"):
            p.add(f"line {c.start_line}: {cmd} before the first FROM")
        if cmd == "FROM":
            seen_from = True
            image = c.value[0]
            if ":" not in image.split("/")[-1] or image.endswith(":latest"):
                p.add(f"line {c.start_line}: base image {image} is not pinned to a tag")
            name = c.value[2] if len(c.value) == 3 and c.value[1].upper() == "AS" else str(len(stages))
            if name in stages:
                p.add(f"line {c.start_line}: stage name {name} used twice")
            stages.append(name)
            final = {"stage": name}
        elif cmd == "COPY":
            flags = dict(f.lstrip("-").split("=", 1) for f in c.flags if "=" in f)
            srcs = list(c.value[:-1])
            if "from" in flags:
                if flags["from"] not in stages[:-1]:
                    p.add(f"line {c.start_line}: COPY --from={flags['from']} names no earlier stage")
            else:
                for s in srcs:
                    if not any(ch in s for ch in "*?[") and not (ROOT / s).exists():
                        p.add(f"line {c.start_line}: COPY source {s} not in the build context (repo root)")
        elif cmd == "RUN":
            for f in c.flags:
                if f.startswith("--mount=") and "type=cache" not in f:
                    p.add(f"line {c.start_line}: unexpected mount {f}")
            if "cargo build" in c.value[0] and "--locked" not in c.value[0]:
                p.add(f"line {c.start_line}: cargo build without --locked")
        elif cmd in ("USER", "EXPOSE", "ENTRYPOINT", "VOLUME", "HEALTHCHECK", "WORKDIR"):
            final[cmd] = c
    if final.get("stage") != "runtime":
        p.add("the last stage should be named runtime")
    user = final.get("USER")
    if user is None or user.value[0] != f"{UID}:{UID}":
        p.add(f"final stage must run as USER {UID}:{UID}")
    expose = final.get("EXPOSE")
    if expose is None or str(GRPC_PORT) not in expose.value:
        p.add(f"final stage must EXPOSE {GRPC_PORT}")
    ep = final.get("ENTRYPOINT")
    if ep is None or not ep.json or list(ep.value) != ["fangpind", "--config", CONFIG_PATH]:
        p.add(f'ENTRYPOINT must be ["fangpind", "--config", "{CONFIG_PATH}"] in exec form')
    vol = final.get("VOLUME")
    if vol is None or "/var/lib/fangpin" not in vol.value:
        p.add("final stage must declare VOLUME /var/lib/fangpin")
    return final


# ---------------------------------------------------------------- otel


def check_otel(deploy: Path, p: Problems) -> str:
    doc = load_yaml(deploy / "otel-collector.yaml")
    service = doc.get("service", {})
    for kind in ("receivers", "processors", "exporters"):
        defined = set((doc.get(kind) or {}).keys())
        for pname, pipe in service.get("pipelines", {}).items():
            for comp in pipe.get(kind, []):
                if comp not in defined:
                    p.add(f"pipeline {pname}: {kind[:-1]} {comp!r} is not defined")
            if kind == "processors" and pipe.get(kind) and pipe[kind][0] != "memory_limiter":
                p.add(f"pipeline {pname}: memory_limiter should come first")
        used = {c for pipe in service.get("pipelines", {}).values() for c in pipe.get(kind, [])}
        for comp in sorted(defined - used):
            p.add(f"{kind[:-1]} {comp!r} is defined but used by no pipeline")
    for ext in service.get("extensions", []):
        if ext not in (doc.get("extensions") or {}):
            p.add(f"extension {ext!r} is not defined")
    for needed in ("traces", "metrics"):
        if needed not in service.get("pipelines", {}):
            p.add(f"no {needed} pipeline")
    grpc = doc["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    prom = doc["exporters"]["prometheus"]["endpoint"]
    if not grpc.endswith(":4317"):
        p.add(f"OTLP gRPC receiver on {grpc}, expected port 4317")
    if not prom.endswith(":8889"):
        p.add(f"prometheus exporter on {prom}, expected port 8889")
    return f"OTLP {grpc}, prometheus {prom}"


def check_prometheus(deploy: Path, p: Problems) -> str:
    doc = load_yaml(deploy / "prometheus.yml")
    targets = [
        t
        for job in doc.get("scrape_configs", [])
        for sc in job.get("static_configs", [])
        for t in sc.get("targets", [])
    ]
    if "otel-collector:8889" not in targets:
        p.add(f"no scrape target otel-collector:8889 (found {targets})")
    if any(t.endswith(f":{GRPC_PORT}") for t in targets):
        p.add("fangpind serves gRPC only: scrape the collector, not fangpind")
    return f"targets {', '.join(targets)}"


# ---------------------------------------------------------------- consistency


def seconds(value: str) -> int:
    m = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(value))
    if not m or not any(m.groups()):
        raise SystemExit(f"cannot read duration {value!r}")
    return int(m.group(1) or 0) * 60 + int(m.group(2) or 0)


def check_consistency(deploy: Path, p: Problems) -> str:
    notes = []
    # Kubernetes
    objs = {}
    for f in (deploy / "k8s").glob("*.yaml"):
        for d in load_yaml_docs(f):
            objs[(d["kind"], d.get("metadata", {}).get("name"))] = d
    dep = objs[("Deployment", "fangpind")]
    pod = dep["spec"]["template"]["spec"]
    ctr = pod["containers"][0]
    cm_doc = tomllib.loads(configmap_toml(deploy / "k8s" / "configmap.yaml"))
    grace = grace_of(cm_doc)
    pre = ctr.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    tgp = pod.get("terminationGracePeriodSeconds", 30)
    if tgp <= pre + grace + WIND_DOWN_SECS:
        p.add(f"k8s: terminationGracePeriodSeconds {tgp} <= preStop {pre} + grace {grace} + {WIND_DOWN_SECS}")
    notes.append(f"k8s {tgp}s > {pre}+{grace}+{WIND_DOWN_SECS}")
    sc = pod.get("securityContext", {})
    if sc.get("runAsUser") != UID or sc.get("runAsGroup") != UID:
        p.add(f"k8s: runAsUser/runAsGroup must be {UID} (the image's user)")
    csc = ctr.get("securityContext", {})
    if not (csc.get("readOnlyRootFilesystem") and csc.get("allowPrivilegeEscalation") is False
            and csc.get("capabilities", {}).get("drop") == ["ALL"]):
        p.add("k8s: container must be read-only, no privilege escalation, drop ALL")
    mounts = {m["name"]: m["mountPath"] for m in ctr.get("volumeMounts", [])}
    sub_paths = {m["name"]: m.get("subPath") for m in ctr.get("volumeMounts", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    cfg = vols.get("config", {}).get("configMap", {})
    items = [i["path"] for i in cfg.get("items", [])]
    config_at = (mounts.get("config") if sub_paths.get("config") in items
                 else f"{mounts.get('config')}/{items[0] if items else ''}")
    if config_at != CONFIG_PATH:
        p.add(f"k8s: the ConfigMap is not mounted at {CONFIG_PATH}")
    # Every file the configuration names comes from a Secret mounted at
    # its directory, holding it under its name.
    for section, key in (("tls", "cert_file"), ("tls", "key_file"), ("tls", "client_ca_file"),
                         ("auth", "jwks_file"), ("personal_data", "key_file")):
        path = cm_doc.get(section, {}).get(key)
        if not path:
            continue
        directory, _, name = path.rpartition("/")
        vol_name = next((n for n, m in mounts.items() if m == directory), None)
        secret_ref = vols.get(vol_name, {}).get("secret", {})
        secret = objs.get(("Secret", secret_ref.get("secretName")))
        keys = {i["path"]: i["key"] for i in secret_ref.get("items", [])} or None
        secret_key = keys.get(name) if keys is not None else name
        if secret is None or secret_key not in secret.get("stringData", {}) | secret.get("data", {}):
            p.add(f"k8s: {section}.{key} {path} is not a key of a Secret mounted at {directory}")
    health_listen = cm_doc.get("server", {}).get("health_listen", "")
    if "tls" in cm_doc and not health_listen.endswith(f":{HEALTH_PORT}"):
        p.add(f"k8s: with [tls], server.health_listen must be on port {HEALTH_PORT} for the probes")
    if ("ConfigMap", cfg.get("name")) not in objs:
        p.add(f"k8s: ConfigMap {cfg.get('name')} not defined")
    for env in ctr.get("env", []):
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            secret = objs.get(("Secret", ref["name"]))
            if secret is None or ref["key"] not in secret.get("stringData", {}) | secret.get("data", {}):
                p.add(f"k8s: env {env['name']} refers to missing secret key {ref['name']}/{ref['key']}")
    env_names = {e["name"] for e in ctr.get("env", [])}
    for needed in ("FANGPIN_DATABASE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME",
                   "OTEL_RESOURCE_ATTRIBUTES"):
        if needed not in env_names:
            p.add(f"k8s: env {needed} missing")
    probe_port = HEALTH_PORT if "tls" in cm_doc else GRPC_PORT
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if ctr.get(probe, {}).get("grpc", {}).get("port") != probe_port:
            p.add(f"k8s: {probe} must be a native grpc probe on {probe_port}")
    svc = objs[("Service", "fangpind")]
    sport = svc["spec"]["ports"][0]
    if sport.get("port") != GRPC_PORT or sport.get("appProtocol") != "grpc" or sport.get("name") != "grpc":
        p.add("k8s: Service port must be 50051, name grpc, appProtocol grpc")
    pdb = objs[("PodDisruptionBudget", "fangpind")]
    if pdb["spec"]["selector"]["matchLabels"] != dep["spec"]["selector"]["matchLabels"]:
        p.add("k8s: the PDB selects other pods than the Deployment")
    if svc["spec"]["selector"] != dep["spec"]["selector"]["matchLabels"]:
        p.add("k8s: the Service selects other pods than the Deployment")
    # compose
    compose = load_yaml(deploy / "compose.yaml")
    fsvc = compose["services"]["fangpind"]
    ctoml = tomllib.loads((deploy / "fangpind.toml").read_text(encoding="utf-8"))
    cgrace = grace_of(ctoml)
    stop = seconds(fsvc.get("stop_grace_period", "10s"))
    if stop <= cgrace + WIND_DOWN_SECS:
        p.add(f"compose: stop_grace_period {stop}s <= grace {cgrace} + {WIND_DOWN_SECS}")
    notes.append(f"compose {stop}s > {cgrace}+{WIND_DOWN_SECS}")
    if fsvc.get("user") != f"{UID}:{UID}":
        p.add(f"compose: fangpind user must be {UID}:{UID}")
    if f"./fangpind.toml:{CONFIG_PATH}:ro" not in fsvc.get("volumes", []):
        p.add(f"compose: deploy/fangpind.toml must be mounted read-only at {CONFIG_PATH}")
    if fsvc.get("depends_on", {}).get("postgres", {}).get("condition") != "service_healthy":
        p.add("compose: fangpind must wait for postgres to be healthy")
    # systemd
    unit = (deploy / "fangpind.service").read_text(encoding="utf-8")
    m = re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M)
    utoml = tomllib.loads((deploy / "fangpind-county.toml").read_text(encoding="utf-8"))
    ugrace = grace_of(utoml)
    if not m or int(m.group(1)) <= ugrace + WIND_DOWN_SECS:
        p.add(f"systemd: TimeoutStopSec must exceed grace {ugrace} + {WIND_DOWN_SECS}")
    else:
        notes.append(f"systemd {m.group(1)}s > {ugrace}+{WIND_DOWN_SECS}")
    if f"--config {CONFIG_PATH}" not in unit:
        p.add(f"systemd: ExecStart must pass --config {CONFIG_PATH}")
    if not utoml.get("listen", "").startswith("127.0.0.1:"):
        p.add("systemd: the county box listens on loopback only until the operator opens it")
    return "; ".join(notes)


# ---------------------------------------------------------------- main


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__)
        return 2
    command, path, options = argv[1], Path(argv[2]), argv[3:]
    p = Problems()
    note = ""
    if command == "toml":
        check_fangpind_toml(path.read_text(encoding="utf-8"), str(path), p)
    elif command == "configmap-toml":
        text = configmap_toml(path)
        if "--print" in options:
            sys.stdout.write(text)
            return 0
        check_fangpind_toml(text, f"{path} data.fangpind.toml", p)
    elif command == "compose-refs":
        check_compose_refs(path, p)
    elif command == "kustomization":
        listed = kustomization(path, p)
        if "--list" in options:
            print("\n".join(str(f) for f in listed))
    elif command == "dockerfile":
        check_dockerfile(path, p)
    elif command == "otel":
        note = check_otel(path, p)
    elif command == "prometheus":
        note = check_prometheus(path, p)
    elif command == "consistency":
        note = check_consistency(path, p)
    else:
        print(f"unknown command {command}", file=sys.stderr)
        return 2
    for problem in p:
        print(problem)
    if not p and note:
        print(note)
    return 1 if p else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
