package requestmirror

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A panic in the plugin's own code must never reach Traefik: on the request path the request is served
// unmirrored, in a body read the upstream still gets its bytes, and in a worker the goroutine ends quietly.

func TestPanicOnTheRequestPathServesTheRequestUnmirrored(t *testing.T) {
	up := &readingUpstream{}
	// No settings: the method check dereferences nil.
	m := &Mirror{next: up}
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader("kept")))
	if rec.Code != http.StatusCreated || len(up.seen) != 1 || string(up.seen[0]) != "kept" {
		t.Fatalf("status %d, upstream saw %q", rec.Code, up.seen)
	}
}

func TestPanicInTheBodyCaptureLeavesTheUpstreamReadWhole(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 10000)
	// No pool: handing the capture off dereferences nil.
	c := &capture{limit: 100, declared: -1}
	tee := &teeBody{rc: io.NopCloser(bytes.NewReader(body)), c: c}
	done := make(chan struct{})
	var got []byte
	var err error
	go func() {
		defer close(done)
		got, err = io.ReadAll(tee)
		// As ServeHTTP does once the handler returns: a lock left held by the panic would hang here.
		finish(c)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the read or the hand-off hung after a panic in the capture")
	}
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read %d bytes, err %v", len(got), err)
	}
}

func TestPanicInAWorkerCountsItsBatchAndTheWorkerGoesOn(t *testing.T) {
	tap := startTap(t)
	s, err := validate(testConfig(tap.server.URL))
	if err != nil {
		t.Fatal(err)
	}
	p := newPool(s.pool)
	client := p.client
	// No client: the POST dereferences nil.
	p.client = nil
	p.enqueue(newCapture(p, s, httptest.NewRequest(http.MethodGet, "/lost", nil)))
	waitUntil(t, "the lost snapshot counted", func() bool { return p.counters.snapshot().Dropped["internal_error"] == 1 })
	if held := atomic.LoadInt64(&p.budget); held != 0 {
		t.Fatalf("%d bytes still held after the panic", held)
	}
	p.client = client
	p.enqueue(newCapture(p, s, httptest.NewRequest(http.MethodGet, "/delivered", nil)))
	if got := tap.waitFor(t, 1)[0].snapshot.URI; got != "/delivered" {
		t.Fatalf("got %s", got)
	}
}
