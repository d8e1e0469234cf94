module requestmirror.local/traefik-plugin

go 1.22
