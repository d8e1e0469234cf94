// Command responder answers every request with 200 and an empty body. The benchmark puts it behind Traefik's
// forwardAuth as the floor that any forwardAuth design is measured against (scenario S1).
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"time"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	// The benchmark reads the chosen port from this line.
	log.Printf("listening on %s", ln.Addr())
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusOK)
		}),
		IdleTimeout: 95 * time.Second,
	}
	log.Fatal(srv.Serve(ln))
}
