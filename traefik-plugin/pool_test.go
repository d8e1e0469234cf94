package requestmirror

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// blackhole accepts connections and never answers: a tap behind a dead load balancer.
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 1024)
	// The accepting goroutine owns the channel and closes it once the listener is closed: closing it from the
	// cleanup raced with a send of a connection accepted just before (go test -race caught it).
	go func() {
		defer close(held)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			held <- conn
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		for conn := range held {
			_ = conn.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

func poolOf(h http.Handler) *pool {
	return h.(*Mirror).pool
}

func TestDeadTapNeverDelaysRequestsAndDropsBeyondTheEventBound(t *testing.T) {
	cfg := testConfig(blackhole(t))
	cfg.Workers = 1
	cfg.MaxQueueEvents = 3
	cfg.MaxBatchEvents = 1
	cfg.TimeoutMs = 60000
	up := &readingUpstream{}
	h := mustNew(t, up, cfg)
	p := poolOf(h)
	var slowest time.Duration
	for i := 0; i < 20; i++ {
		start := time.Now()
		rec := serve(h, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader([]byte("payload"))))
		if d := time.Since(start); d > slowest {
			slowest = d
		}
		if rec.Code != http.StatusCreated {
			t.Fatalf("status %d", rec.Code)
		}
	}
	// One snapshot is with the worker (stuck on the blackhole), three wait; every other one was dropped.
	r := p.counters.snapshot()
	if r.Queued > 4 || r.Dropped["queue_full"] < 16 || r.Queued+r.Dropped["queue_full"] != 20 {
		t.Fatalf("queued %d, dropped %v: want at most 4 queued and the rest dropped as queue_full", r.Queued, r.Dropped)
	}
	// Far below the 60 s the worker waits on the blackhole: a request that waited for it would show.
	if slowest > 2*time.Second {
		t.Fatalf("a request took %v with the tap blackholed", slowest)
	}
}

func TestByteBoundHoldsWhateverTheBodiesAndCountsWhatItCut(t *testing.T) {
	cfg := testConfig(blackhole(t))
	cfg.Workers = 1
	cfg.MaxBatchEvents = 1
	cfg.MaxBodyBytes = 64 * kib
	cfg.MaxQueueBytes = 200 * kib
	cfg.TimeoutMs = 60000
	h := mustNew(t, &readingUpstream{}, cfg)
	p := poolOf(h)
	body := bytes.Repeat([]byte("b"), 64*kib)
	for i := 0; i < 20; i++ {
		serve(h, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)))
		if held := atomic.LoadInt64(&p.budget); held > int64(cfg.MaxQueueBytes) {
			t.Fatalf("%d bytes held, bound %d", held, cfg.MaxQueueBytes)
		}
	}
	r := p.counters.snapshot()
	if r.BudgetCuts == 0 || r.Dropped["queue_bytes"] == 0 {
		t.Fatalf("want bodies cut and snapshots dropped for bytes, got cuts %d dropped %v", r.BudgetCuts, r.Dropped)
	}
}

func TestRefusingTapCountsSendFailuresAndRejectingTapCountsRejections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	_ = ln.Close()
	h := mustNew(t, &readingUpstream{}, testConfig(refused))
	serve(h, httptest.NewRequest(http.MethodGet, "/", nil))
	waitUntil(t, "a send failure", func() bool { return poolOf(h).counters.snapshot().Dropped["send_failed"] == 1 })

	tap := startTap(t)
	tap.status = http.StatusServiceUnavailable
	h2 := mustNew(t, &readingUpstream{}, testConfig(tap.server.URL))
	serve(h2, httptest.NewRequest(http.MethodGet, "/", nil))
	waitUntil(t, "a rejection", func() bool { return poolOf(h2).counters.snapshot().Dropped["rejected"] == 1 })
}

func TestCountersTravelToTheTapWithEveryBatch(t *testing.T) {
	tap := startTap(t)
	h := mustNew(t, &readingUpstream{}, testConfig(tap.server.URL))
	serve(h, httptest.NewRequest(http.MethodGet, "/one", nil))
	tap.waitFor(t, 1)
	// The tap has the first batch once its handler runs; the worker counts it as sent only once the answer is back.
	waitUntil(t, "the first batch counted as sent", func() bool { return poolOf(h).counters.snapshot().Sent == 1 })
	serve(h, httptest.NewRequest(http.MethodGet, "/two", nil))
	got := tap.waitFor(t, 2)
	last := got[1].header
	if last.Version != 1 || last.Reporter == "" || last.Reporter != got[0].header.Reporter {
		t.Fatalf("headers %+v %+v", got[0].header, last)
	}
	// The second batch reports the first as sent.
	if last.Counters.Sent != 1 || last.Counters.Queued != 2 {
		t.Fatalf("counters %+v", last.Counters)
	}
}

func TestNewForEveryRouterAndReloadSharesOnePoolAndItsGoroutines(t *testing.T) {
	tap := startTap(t)
	cfg := testConfig(tap.server.URL)
	cfg.Workers = 3
	var first *pool
	before := runtime.NumGoroutine()
	for i := 0; i < 50; i++ {
		h, err := New(context.Background(), &readingUpstream{}, cfg, "reload")
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 5; j++ {
			serve(h, httptest.NewRequest(http.MethodGet, "/", nil))
		}
		if first == nil {
			first = poolOf(h)
		} else if poolOf(h) != first {
			t.Fatal("equal settings must share one pool")
		}
	}
	tap.waitFor(t, 250)
	// At most the pool's workers plus its keep-alive connections (a reader and a writer each) and the test tap's.
	if grown := runtime.NumGoroutine() - before; grown > 3+3*2+3*2 {
		t.Fatalf("goroutines grew by %d over 50 reloads", grown)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
