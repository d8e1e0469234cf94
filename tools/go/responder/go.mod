module requestmirror.local/tools/responder

go 1.26
