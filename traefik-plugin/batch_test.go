package requestmirror

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// How the workers cut the queue into batches, how many run, what the byte budget admits, and what a batch leaves
// behind: a tap that holds its first batch until told lets the queue fill behind it.

// gatedTap decodes batches like fakeTap but holds the first POST until release is closed, and counts connections.
type gatedTap struct {
	server      *httptest.Server
	release     chan struct{}
	mu          sync.Mutex
	sizes       []int
	connections int64
	answer      []byte
}

func startGatedTap(t *testing.T, answer []byte) *gatedTap {
	t.Helper()
	g := &gatedTap{release: make(chan struct{}), answer: answer}
	first := int32(0)
	g.server = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		data, _ := io.ReadAll(req.Body)
		_, snaps, _, err := decodeBatch(data)
		if err != nil {
			rw.WriteHeader(http.StatusBadRequest)
			return
		}
		if atomic.CompareAndSwapInt32(&first, 0, 1) {
			<-g.release
		}
		g.mu.Lock()
		g.sizes = append(g.sizes, len(snaps))
		g.mu.Unlock()
		if len(g.answer) > 0 {
			rw.WriteHeader(http.StatusOK)
			_, _ = rw.Write(g.answer)
			return
		}
		rw.WriteHeader(http.StatusNoContent)
	}))
	g.server.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			atomic.AddInt64(&g.connections, 1)
		}
	}
	g.server.Start()
	t.Cleanup(func() {
		g.open()
		g.server.Close()
	})
	return g
}

// open lets the held batch through; safe to call twice.
func (g *gatedTap) open() {
	select {
	case <-g.release:
	default:
		close(g.release)
	}
}

func (g *gatedTap) batchSizes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]int, len(g.sizes))
	copy(out, g.sizes)
	return out
}

func (g *gatedTap) total() int {
	n := 0
	for _, s := range g.batchSizes() {
		n += s
	}
	return n
}

// queueBehindAHeldBatch sends one request, waits until its batch is held at the tap, then sends the bodies given
// (nil: a GET without a body), which queue behind it; then lets everything through and returns the batch sizes.
func queueBehindAHeldBatch(t *testing.T, g *gatedTap, cfg *Config, bodies [][]byte) []int {
	t.Helper()
	h := mustNew(t, &readingUpstream{}, cfg)
	p := poolOf(h)
	serve(h, httptest.NewRequest(http.MethodGet, "/held", nil))
	waitUntil(t, "the first batch taken by the worker", func() bool { return len(p.queue) == 0 && atomic.LoadInt64(&p.counters.queued) == 1 })
	for _, b := range bodies {
		if b == nil {
			serve(h, httptest.NewRequest(http.MethodGet, "/queued", nil))
		} else {
			serve(h, httptest.NewRequest(http.MethodPost, "/queued", bytes.NewReader(b)))
		}
	}
	if len(p.queue) != len(bodies) {
		t.Fatalf("%d snapshots queued behind the held batch, want %d", len(p.queue), len(bodies))
	}
	g.open()
	waitUntil(t, "every snapshot at the tap", func() bool { return g.total() == 1+len(bodies) })
	return g.batchSizes()
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestABatchHoldsAtMostMaxBatchEvents(t *testing.T) {
	g := startGatedTap(t, nil)
	cfg := testConfig(g.server.URL)
	cfg.Workers = 1
	cfg.MaxBatchEvents = 3
	sizes := queueBehindAHeldBatch(t, g, cfg, make([][]byte, 7))
	if !sameInts(sizes, []int{1, 3, 3, 1}) {
		t.Fatalf("batch sizes %v, want [1 3 3 1]", sizes)
	}
}

func TestABatchClosesOnceItsBodiesReachMaxBatchBytes(t *testing.T) {
	g := startGatedTap(t, nil)
	cfg := testConfig(g.server.URL)
	cfg.Workers = 1
	cfg.MaxBatchBytes = 200
	body := bytes.Repeat([]byte("b"), 100)
	// Two 100-byte bodies reach 200: the batch takes no third.
	sizes := queueBehindAHeldBatch(t, g, cfg, [][]byte{body, body, body, body, body})
	if !sameInts(sizes, []int{1, 2, 2, 1}) {
		t.Fatalf("batch sizes %v, want [1 2 2 1]", sizes)
	}
}

func TestNoMoreWorkersRunThanConfigured(t *testing.T) {
	cfg := testConfig(blackhole(t))
	cfg.Workers = 2
	cfg.MaxBatchEvents = 1
	cfg.TimeoutMs = 60000
	h := mustNew(t, &readingUpstream{}, cfg)
	for i := 0; i < 5; i++ {
		serve(h, httptest.NewRequest(http.MethodGet, "/", nil))
	}
	// Workers start as snapshots are enqueued, on the request path: the count is final once the requests are served.
	if n := atomic.LoadInt32(&poolOf(h).running); n != 2 {
		t.Fatalf("%d workers running, want 2", n)
	}
}

func TestTheByteBudgetAdmitsUpToExactlyMaxQueueBytes(t *testing.T) {
	cfg := testConfig(blackhole(t))
	cfg.Workers = 1
	cfg.MaxBatchEvents = 1
	cfg.MaxBodyBytes = 0
	// Room for exactly two body-less snapshots: the blackholed worker holds the first one's bytes.
	cfg.MaxQueueBytes = 2 * overheadBytes
	cfg.TimeoutMs = 60000
	h := mustNew(t, &readingUpstream{}, cfg)
	p := poolOf(h)
	for i := 0; i < 3; i++ {
		serve(h, httptest.NewRequest(http.MethodGet, "/", nil))
	}
	r := p.counters.snapshot()
	if r.Queued != 2 || r.Dropped["queue_bytes"] != 1 || atomic.LoadInt64(&p.budget) != 2*overheadBytes {
		t.Fatalf("queued %d, dropped %v, %d bytes held: want 2 queued, 1 dropped for bytes, %d held", r.Queued, r.Dropped, atomic.LoadInt64(&p.budget), 2*overheadBytes)
	}
}

func TestOneConnectionCarriesConsecutiveBatchesWhenTheTapAnswersWithABody(t *testing.T) {
	g := startGatedTap(t, []byte(strings.Repeat("ok ", 100)))
	g.open()
	cfg := testConfig(g.server.URL)
	cfg.Workers = 1
	h := mustNew(t, &readingUpstream{}, cfg)
	for i := 1; i <= 3; i++ {
		serve(h, httptest.NewRequest(http.MethodGet, "/", nil))
		waitUntil(t, "the batch sent", func() bool { return poolOf(h).counters.snapshot().Sent == int64(i) })
	}
	if n := atomic.LoadInt64(&g.connections); n != 1 {
		t.Fatalf("%d connections for 3 batches, want 1", n)
	}
}

func TestABatchBufferGrownPastFourMiBIsNotKept(t *testing.T) {
	tap := startTap(t)
	s, err := validate(testConfig(tap.server.URL))
	if err != nil {
		t.Fatal(err)
	}
	p := newPool(s.pool)
	var frames bytes.Buffer
	for _, tc := range []struct {
		size int
		kept bool
	}{{5 * mib, false}, {kib, true}} {
		c := newCapture(p, s, httptest.NewRequest(http.MethodPost, "/", nil))
		c.body = make([]byte, tc.size)
		p.ship([]*capture{c}, &frames)
		if kept := frames.Cap() > 0; kept != tc.kept {
			t.Fatalf("after a %d-byte body the buffer's capacity is %d: kept %v, want %v", tc.size, frames.Cap(), kept, tc.kept)
		}
	}
	// Exactly 4 MiB is still kept.
	exact := bytes.NewBuffer(make([]byte, 0, 4*mib))
	p.ship([]*capture{newCapture(p, s, httptest.NewRequest(http.MethodGet, "/", nil))}, exact)
	if exact.Cap() != 4*mib {
		t.Fatalf("a 4 MiB buffer became %d bytes", exact.Cap())
	}
}

func TestEvery2xxFromTheTapCountsAsSent(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusNoContent, 299} {
		tap := startTap(t)
		tap.status = status
		h := mustNew(t, &readingUpstream{}, testConfig(tap.server.URL))
		serve(h, httptest.NewRequest(http.MethodGet, "/", nil))
		waitUntil(t, "the batch counted", func() bool { r := poolOf(h).counters.snapshot(); return r.Sent+r.Dropped["rejected"] == 1 })
		if r := poolOf(h).counters.snapshot(); r.Sent != 1 {
			t.Fatalf("status %d: sent %d, dropped %v", status, r.Sent, r.Dropped)
		}
	}
}

func TestTheReporterIsSixteenRandomHexDigitsPerPool(t *testing.T) {
	hex16 := regexp.MustCompile(`^[0-9a-f]{16}$`)
	a, b := newReporterID(), newReporterID()
	if !hex16.MatchString(a) || !hex16.MatchString(b) || a == b {
		t.Fatalf("reporter ids %q and %q", a, b)
	}
}

func TestAnIdleWorkerStopsAndTheNextCaptureStartsOne(t *testing.T) {
	tap := startTap(t)
	s, err := validate(testConfig(tap.server.URL))
	if err != nil {
		t.Fatal(err)
	}
	p := newPool(s.pool)
	p.idle = 20 * time.Millisecond
	atomic.StoreInt64(&lastPanicLog, 0)
	p.enqueue(newCapture(p, s, httptest.NewRequest(http.MethodGet, "/first", nil)))
	tap.waitFor(t, 1)
	waitUntil(t, "the idle worker stopped", func() bool { return atomic.LoadInt32(&p.running) == 0 })
	// Nothing queued: no worker comes back. A negative is observed over a window, here ten idle periods.
	deadline := time.Now().Add(10 * p.idle)
	for time.Now().Before(deadline) {
		if n := atomic.LoadInt32(&p.running); n != 0 {
			t.Fatalf("%d workers running with nothing queued", n)
		}
		time.Sleep(p.idle / 4)
	}
	// A worker stopping for idleness is no panic.
	if atomic.LoadInt64(&lastPanicLog) != 0 {
		t.Fatal("a worker's idle stop was logged as a panic")
	}
	p.enqueue(newCapture(p, s, httptest.NewRequest(http.MethodGet, "/second", nil)))
	if got := tap.waitFor(t, 2)[1].snapshot.URI; got != "/second" {
		t.Fatalf("got %s", got)
	}
}
