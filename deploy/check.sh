#!/usr/bin/env bash
# Validates everything under deploy/ without a Docker engine or a cluster:
#
#   TOML      every fangpind config (deploy/*.toml and the one inside
#             k8s/configmap.yaml) parses and uses only the keys fangpind
#             knows; with a built fangpind, `--check-config` on each too.
#   compose   `docker compose config -q` when the compose plugin exists,
#             else the compose-spec JSON schema (check-jsonschema) plus
#             reference checks (depends_on, volumes, bind-mount sources).
#   k8s       `kubectl kustomize` renders deploy/k8s; every object is
#             validated offline against the official Kubernetes OpenAPI
#             schemas, strictly (unknown fields are errors), with
#             kubernetes-validate, for the oldest and newest supported
#             Kubernetes.
#   Dockerfile  parsed by BuildKit's own parser (PyPI `dockerfile`), then
#             checked: known instructions, stages, COPY sources, user,
#             entrypoint, port.
#   systemd   `systemd-analyze verify` on the unit (warnings are failures).
#   otel/prometheus  YAML parses; pipelines name only defined components;
#             Prometheus scrapes the collector's exporter port.
#   consistency  grace periods and UIDs agree across the files.
#
# Tools missing from the machine are installed on first run into
# deploy/.tools/ (a Python venv from PyPI; gitignored). If that install
# fails the script fails: set FANGPIN_CHECK_ALLOW_SKIP=1 to turn a missing
# tool into a reported skip instead.
#
# Exit status: 0 all checks passed (skips are listed), 1 a check failed,
# 2 a tool could not be installed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

tools="$here/.tools"
venv="$tools/venv"
# Pinned, so CI results do not move under us. kubernetes-validate bundles
# the Kubernetes schemas (1.25 to 1.37 in this version).
pip_pkgs=(kubernetes-validate==1.37.0 check-jsonschema==0.39.0 dockerfile==3.4.0 PyYAML==6.0.3)
# The oldest Kubernetes the manifests target (preStop sleep needs 1.30) and
# the newest this kubernetes-validate knows.
read -r -a k8s_versions <<<"${FANGPIN_K8S_VERSIONS:-1.30.0 1.37.0}"
allow_skip="${FANGPIN_CHECK_ALLOW_SKIP:-0}"

failed=()
skipped=()
passed=()
start=$SECONDS
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

say() { printf '%s\n' "$*"; }
ok() { passed+=("$1"); say "  ok    $1"; }
bad() { failed+=("$1"); say "  FAIL  $1"; }
skip() { skipped+=("$1: $2"); say "  skip  $1 ($2)"; }

missing_tool() {
    # $1 what, $2 why
    if [[ "$allow_skip" == 1 ]]; then
        skip "$1" "$2"
    else
        say "error: $1 needs a tool that could not be installed: $2" >&2
        say "       (FANGPIN_CHECK_ALLOW_SKIP=1 reports this as a skip instead)" >&2
        exit 2
    fi
}

# ---------------------------------------------------------------- tools
ensure_venv() {
    local stamp="$venv/.fangpin-pins"
    if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "${pip_pkgs[*]}" ]]; then
        return 0
    fi
    say "installing validation tools into ${venv#"$root"/} (first run only) ..."
    rm -rf "$venv"
    mkdir -p "$tools"
    if ! python3 -m venv "$venv" >"$tmp/venv.log" 2>&1; then
        cat "$tmp/venv.log" >&2
        return 1
    fi
    if ! "$venv/bin/pip" install --quiet --disable-pip-version-check "${pip_pkgs[@]}" >"$tmp/pip.log" 2>&1; then
        cat "$tmp/pip.log" >&2
        rm -rf "$venv"
        return 1
    fi
    printf '%s' "${pip_pkgs[*]}" >"$stamp"
}

have_venv=0
if command -v python3 >/dev/null 2>&1 && ensure_venv; then
    have_venv=1
    py="$venv/bin/python"
else
    missing_tool "python tools" "python3 -m venv / pip install ${pip_pkgs[*]} failed"
    py="python3"
fi

# Small Python helpers shared by several checks, run with the venv's Python
# (PyYAML) or, failing that, the system's.
helpers="$here/check_helpers.py"

# ---------------------------------------------------------------- TOML
say "TOML configuration"
for f in deploy/*.toml; do
    if out="$("$py" "$helpers" toml "$f" 2>&1)"; then ok "$f"; else bad "$f"; say "$out" | sed 's/^/        /'; fi
done
if out="$("$py" "$helpers" configmap-toml deploy/k8s/configmap.yaml 2>&1)"; then
    ok "deploy/k8s/configmap.yaml fangpind.toml"
else
    bad "deploy/k8s/configmap.yaml fangpind.toml"; say "$out" | sed 's/^/        /'
fi

fangpind="${FANGPIND:-}"
if [[ -z "$fangpind" ]]; then
    for candidate in target/release/fangpind target/debug/fangpind; do
        if [[ -x "$candidate" ]]; then fangpind="$candidate"; break; fi
    done
fi
if [[ -n "$fangpind" ]] && "$fangpind" --help 2>/dev/null | grep -q -- '--check-config'; then
    "$py" "$helpers" configmap-toml deploy/k8s/configmap.yaml --print >"$tmp/k8s-fangpind.toml"
    for f in deploy/*.toml "$tmp/k8s-fangpind.toml"; do
        label="fangpind --check-config ${f#"$tmp"/}"
        # An empty environment apart from PATH: only the file is checked.
        if out="$(env -i PATH="$PATH" "$fangpind" --config "$f" --check-config 2>&1)"; then
            ok "$label"
        else
            bad "$label"; say "$out" | sed 's/^/        /'
        fi
    done
else
    skip "fangpind --check-config" "no fangpind binary with --check-config in target/ (set FANGPIND=PATH); key names were checked above"
fi

# ---------------------------------------------------------------- compose
say "compose"
if docker compose version >/dev/null 2>&1; then
    # Interpolation needs no values: every variable has a default.
    if out="$(docker compose -f deploy/compose.yaml --profile metrics config -q 2>&1)"; then
        ok "docker compose config -q deploy/compose.yaml"
    else
        bad "docker compose config -q deploy/compose.yaml"; say "$out" | sed 's/^/        /'
    fi
else
    say "  (no docker compose plugin here: schema and references instead)"
    if [[ "$have_venv" == 1 ]]; then
        if out="$("$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml 2>&1)"; then
            ok "compose-spec schema deploy/compose.yaml"
        else
            bad "compose-spec schema deploy/compose.yaml"; say "$out" | sed 's/^/        /'
        fi
    else
        missing_tool "compose-spec schema" "check-jsonschema not installed"
    fi
    if out="$("$py" "$helpers" compose-refs deploy/compose.yaml 2>&1)"; then
        ok "compose references (depends_on, volumes, files, build)"
    else
        bad "compose references"; say "$out" | sed 's/^/        /'
    fi
fi

# ---------------------------------------------------------------- k8s
say "kubernetes"
if out="$("$py" "$helpers" kustomization deploy/k8s 2>&1)"; then
    ok "kustomization lists every manifest in deploy/k8s"
else
    bad "kustomization resources"; say "$out" | sed 's/^/        /'
fi
k8s_input=()
if command -v kubectl >/dev/null 2>&1 && kubectl kustomize deploy/k8s >"$tmp/k8s.yaml" 2>"$tmp/kustomize.err"; then
    ok "kubectl kustomize deploy/k8s ($(grep -c '^kind:' "$tmp/k8s.yaml") objects)"
    k8s_input=("$tmp/k8s.yaml")
elif command -v kubectl >/dev/null 2>&1; then
    bad "kubectl kustomize deploy/k8s"; sed 's/^/        /' "$tmp/kustomize.err"
else
    skip "kubectl kustomize" "kubectl not installed; validating the listed files one by one"
    mapfile -t k8s_input < <("$py" "$helpers" kustomization deploy/k8s --list)
fi
if [[ "$have_venv" == 1 && ${#k8s_input[@]} -gt 0 ]]; then
    for v in "${k8s_versions[@]}"; do
        if out="$("$venv/bin/kubernetes-validate" --strict --quiet -k "$v" "${k8s_input[@]}" 2>&1)"; then
            ok "kubernetes-validate --strict, Kubernetes $v"
        else
            bad "kubernetes-validate --strict, Kubernetes $v"; say "$out" | sed 's/^/        /'
        fi
    done
elif [[ "$have_venv" != 1 ]]; then
    missing_tool "kubernetes schemas" "kubernetes-validate not installed"
fi

# ---------------------------------------------------------------- Dockerfile
say "Dockerfile"
if [[ "$have_venv" == 1 ]]; then
    if out="$("$py" "$helpers" dockerfile deploy/Dockerfile 2>&1)"; then
        ok "deploy/Dockerfile (BuildKit parser + checks; not built: no Docker engine)"
    else
        bad "deploy/Dockerfile"; say "$out" | sed 's/^/        /'
    fi
else
    missing_tool "Dockerfile parser" "PyPI dockerfile not installed"
fi

# ---------------------------------------------------------------- systemd
say "systemd"
if command -v systemd-analyze >/dev/null 2>&1; then
    # verify insists that ExecStart's binary exists; check a copy that runs
    # /bin/true instead, and count any warning as a failure.
    mkdir -p "$tmp/unit"
    sed 's#/usr/local/bin/fangpind#/bin/true#g' deploy/fangpind.service >"$tmp/unit/fangpind.service"
    if out="$(systemd-analyze verify "$tmp/unit/fangpind.service" 2>&1)" && [[ -z "$out" ]]; then
        ok "systemd-analyze verify deploy/fangpind.service"
    else
        bad "systemd-analyze verify deploy/fangpind.service"; say "$out" | sed 's/^/        /'
    fi
else
    skip "systemd-analyze verify" "systemd-analyze not installed"
fi

# ---------------------------------------------------------------- otel, prometheus, consistency
say "observability and consistency"
for what in otel prometheus consistency; do
    if out="$("$py" "$helpers" "$what" deploy 2>&1)"; then
        ok "$what${out:+ ($out)}"
    else
        bad "$what"; say "$out" | sed 's/^/        /'
    fi
done

# ---------------------------------------------------------------- summary
say ""
say "deploy/check.sh: ${#passed[@]} passed, ${#failed[@]} failed, ${#skipped[@]} skipped in $((SECONDS - start)) s"
for s in "${skipped[@]}"; do say "  skipped: $s"; done
if [[ ${#failed[@]} -gt 0 ]]; then
    for f in "${failed[@]}"; do say "  failed: $f"; done
    exit 1
fi
