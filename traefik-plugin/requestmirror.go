// Package requestmirror is a Traefik middleware plugin that mirrors requests to the Request Mirror ingress-tap
// from inside Traefik. On the request path it only checks the method, copies the headers and wraps the body so
// that what the upstream reads is also kept (up to maxBodyBytes); a shared pool of workers ships the snapshots to
// the tap in batches. Nothing on the request path waits on I/O: when the tap is slow or down, snapshots are
// dropped and counted, and the request goes on as if the plugin were not there.
//
// Standard library only, and every construct must behave the same compiled and interpreted by Yaegi (Traefik's
// plugin runtime); the tests run both ways.
package requestmirror

import (
	"context"
	"net/http"
)

// Mirror is the middleware for one router.
type Mirror struct {
	next     http.Handler
	settings *settings
	pool     *pool
}

// New validates the configuration (an error names the field and the value) and returns the middleware. Traefik
// calls it for every router using the middleware on every configuration reload; the worker pool is shared.
func New(ctx context.Context, next http.Handler, cfg *Config, name string) (http.Handler, error) {
	s, err := validate(cfg)
	if err != nil {
		return nil, err
	}
	return &Mirror{next: next, settings: s, pool: poolFor(s.pool)}, nil
}

func (m *Mirror) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	c := m.start(req)
	m.next.ServeHTTP(rw, req)
	if c != nil {
		finish(c)
	}
}

// finish sends a capture whose body was not read to its end (or past the cap) by the time the handler returned,
// and never will be, with what there is.
func finish(c *capture) {
	defer func() {
		if r := recover(); r != nil {
			logPanic("request path", r)
		}
	}()
	c.handOff()
}

// start takes the snapshot's request-path share. A panic here is recovered and the request served unmirrored;
// nothing recovers around next, whose panics (http.ErrAbortHandler) are Traefik's to handle.
func (m *Mirror) start(req *http.Request) (pending *capture) {
	defer func() {
		if r := recover(); r != nil {
			logPanic("request path", r)
			pending = nil
		}
	}()
	s := m.settings
	if !s.allMethods && !s.methods[req.Method] {
		return nil
	}
	c := newCapture(m.pool, s, req)
	if hasNoBody(req) || s.maxBodyBytes == 0 {
		c.complete = hasNoBody(req)
		c.handOff()
		return nil
	}
	req.Body = &teeBody{rc: req.Body, c: c}
	return c
}
