#!/usr/bin/env bash
# Regenerates this wrapper module's go.mod for a Kubernetes version: `bash tools/go/kube-apiserver/update.sh v1.36.3`.
# k8s.io/kubernetes points its 33 staging modules at ./staging/... paths that only exist in its own repository, so a
# module that requires it must replace each with the published k8s.io/X v0.MINOR.PATCH. The list comes from
# Kubernetes' own go.mod, never by hand. etcd is pinned to the version Kubernetes itself requires: an unpinned
# etcd pulled newer grpc and other dependencies into kube-apiserver too.
set -euo pipefail
cd "$(dirname "$0")"
version="${1:?usage: update.sh vMAJOR.MINOR.PATCH}"
staging="v0.${version#v1.}"
gomod="$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
etcd="$(go mod edit -json "$gomod" | python3 -c 'import json,sys; print(next(r["Version"] for r in json.load(sys.stdin)["Require"] if r["Path"] == "go.etcd.io/etcd/server/v3"))')"
{
  printf 'module requestmirror.local/tools/kube-apiserver\n\ngo 1.26.0\n\n'
  printf 'tool (\n\tgo.etcd.io/etcd/server/v3\n\tk8s.io/kubernetes/cmd/kube-apiserver\n)\n\n'
  printf 'require (\n\tgo.etcd.io/etcd/server/v3 %s\n\tk8s.io/kubernetes %s\n)\n\n' "$etcd" "$version"
  printf 'replace (\n'
  go mod edit -json "$gomod" | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    if r["New"]["Path"].startswith("./staging/"):
        print("\t%s => %s %s" % (r["Old"]["Path"], r["Old"]["Path"], sys.argv[1]))
' "$staging"
  printf ')\n'
} > go.mod
rm -f go.sum
go mod tidy
