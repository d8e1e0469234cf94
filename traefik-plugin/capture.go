package requestmirror

import (
	"io"
	"net/http"
	"sync"
	"time"
)

// capture is one request on its way to the tap. The request path fills it (a header copy, then body bytes as the
// upstream reads them); it is handed to the pool exactly once, when what it will ever hold is known: at once
// without a body, else at the body's end, past the cap, on a read error, or when the handler returns with the body
// unread. Body reads may come from another goroutine (Traefik's transport writes the body upstream), hence the lock.
type capture struct {
	mu     sync.Mutex
	pool   *pool
	cookie map[string]bool
	limit  int64

	timeMs     int64
	method     string
	proto      string
	host       string
	uri        string
	remoteAddr string
	header     http.Header
	declared   int64

	body     []byte
	received int64
	// reserved is what this capture holds of the pool's byte budget; released when its batch is done or dropped.
	reserved int64
	complete bool
	handed   bool
}

func newCapture(p *pool, s *settings, req *http.Request) *capture {
	c := &capture{
		pool:       p,
		cookie:     s.cookieNames,
		limit:      s.maxBodyBytes,
		timeMs:     time.Now().UnixMilli(),
		method:     req.Method,
		host:       req.Host,
		uri:        req.RequestURI,
		remoteAddr: req.RemoteAddr,
		// One call into compiled code; everything else about headers happens in a worker.
		header:   req.Header.Clone(),
		declared: req.ContentLength,
	}
	if req.TLS != nil {
		c.proto = "https"
	}
	if c.uri == "" && req.URL != nil {
		c.uri = req.URL.RequestURI()
	}
	return c
}

// hasNoBody reports whether the request carries no body at all, so its snapshot can leave at once.
func hasNoBody(req *http.Request) bool {
	if req.Body == nil || req.Body == http.NoBody {
		return true
	}
	return req.ContentLength == 0 && len(req.TransferEncoding) == 0
}

// observe records what one Read of the body returned, and hands the capture off when it is complete. It never
// blocks on anything but the capture's own lock, which is released even if recording panics.
func (c *capture) observe(p []byte, err error) {
	if c.record(p, err) {
		c.pool.enqueue(c)
	}
}

// record keeps what the cap allows of p and says whether the capture is now complete and must be handed off.
func (c *capture) record(p []byte, err error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handed {
		return false
	}
	n := int64(len(p))
	c.received += n
	room := c.limit - int64(len(c.body))
	if room > 0 && n > 0 {
		take := n
		if take > room {
			take = room
		}
		if c.grow(take) {
			c.body = append(c.body, p[:take]...)
		} else {
			// Out of byte budget: the body stays as captured so far, and the snapshot says it was cut.
			c.limit = int64(len(c.body))
			c.pool.counters.add(&c.pool.counters.budgetCuts, 1)
		}
	}
	done := false
	switch {
	case err == io.EOF:
		c.complete = true
		done = true
	case err != nil:
		// The client went away or the body broke off: send what was read, marked incomplete.
		done = true
	case c.received > c.limit:
		// Past the cap: nothing more will be kept, and the snapshot is truncated either way.
		c.complete = true
		done = true
	case c.received == c.limit && c.declared == c.limit:
		c.complete = true
		done = true
	}
	if done {
		c.handed = true
	}
	return done
}

// grow makes room for take more bytes, allocating exactly up to the cap (never append's doubling past it) and
// reserving the new capacity from the pool's byte budget. False when the budget is spent.
func (c *capture) grow(take int64) bool {
	need := int64(len(c.body)) + take
	if need <= int64(cap(c.body)) {
		return true
	}
	size := int64(cap(c.body)) * 2
	if size < 4*kib {
		size = 4 * kib
	}
	if c.declared > 0 && c.declared > size {
		size = c.declared
	}
	if size < need {
		size = need
	}
	if size > c.limit {
		size = c.limit
	}
	extra := size - int64(cap(c.body))
	if !c.pool.reserve(extra) {
		return false
	}
	c.reserved += extra
	grown := make([]byte, len(c.body), size)
	copy(grown, c.body)
	c.body = grown
	return true
}

// handOff sends the capture now if no read has yet: for a request without a body, or one whose handler returned
// without reading it all.
func (c *capture) handOff() {
	if c.claim() {
		c.pool.enqueue(c)
	}
}

// claim marks the capture handed off; false when it already was.
func (c *capture) claim() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handed {
		return false
	}
	c.handed = true
	return true
}

// teeBody is the request body as the upstream sees it: every byte passes through unchanged, and a copy of the
// first `limit` bytes is kept.
type teeBody struct {
	rc io.ReadCloser
	c  *capture
	// broken is set after a panic in the capture: later reads pass straight through. Only the reading goroutine
	// touches it (an http.Request body is not read concurrently).
	broken bool
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	if !t.broken {
		t.observe(p[:n], err)
	}
	return n, err
}

// observe keeps a panic in the capture out of the upstream's read.
func (t *teeBody) observe(p []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			t.broken = true
			logPanic("body capture", r)
		}
	}()
	t.c.observe(p, err)
}

func (t *teeBody) Close() error {
	return t.rc.Close()
}
