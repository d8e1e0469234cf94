module requestmirror.local/tools/yaegi

go 1.26.0

tool github.com/traefik/yaegi/cmd/yaegi

require github.com/traefik/yaegi v0.16.1 // indirect
