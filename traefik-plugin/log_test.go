package requestmirror

import (
	"io"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// What reaches Traefik's log (the plugin's stderr, logged at ERROR): drops and recovered panics, each at most one
// line per logInterval, so a dead tap or a panic on every request cannot flood it.

// stderrOf runs f with os.Stderr going to a pipe and returns what f wrote there.
func stderrOf(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	func() {
		defer func() { os.Stderr = old }()
		f()
	}()
	_ = w.Close()
	out, err := io.ReadAll(r)
	_ = r.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestDropsAreLoggedOnceAnIntervalWithTheTotalOfEveryReason(t *testing.T) {
	c := newCounters()
	c.dropped(reasonQueueFull, 2)
	c.dropped(reasonInternalError, 1)
	c.noteError(io.ErrUnexpectedEOF)
	out := stderrOf(t, func() { c.maybeLog("http://tap.example") })
	if !strings.Contains(out, "request-mirror: tap http://tap.example: 3 snapshots dropped in all") || !strings.Contains(out, "last error: unexpected EOF") || strings.Count(out, "\n") != 1 {
		t.Fatalf("first drops logged as %q", out)
	}
	c.dropped(reasonSendFailed, 1)
	if out := stderrOf(t, func() { c.maybeLog("http://tap.example") }); out != "" {
		t.Fatalf("a second line within the interval: %q", out)
	}
	// The interval has passed.
	c.lastLog = time.Now().Add(-logInterval - time.Second)
	if out := stderrOf(t, func() { c.maybeLog("http://tap.example") }); !strings.Contains(out, ": 4 snapshots dropped in all") {
		t.Fatalf("drops after the interval logged as %q", out)
	}
	// Nothing new dropped: nothing to say, however long it has been.
	c.lastLog = time.Now().Add(-logInterval - time.Second)
	if out := stderrOf(t, func() { c.maybeLog("http://tap.example") }); out != "" {
		t.Fatalf("logged without new drops: %q", out)
	}
}

func TestRecoveredPanicsAreLoggedOnceAnInterval(t *testing.T) {
	atomic.StoreInt64(&lastPanicLog, 0)
	out := stderrOf(t, func() {
		logPanic("worker", "first")
		logPanic("worker", "second")
	})
	if out != "request-mirror: recovered from a panic in the worker: first\n" {
		t.Fatalf("two panics within the interval logged as %q", out)
	}
	atomic.StoreInt64(&lastPanicLog, time.Now().Add(-logInterval-time.Second).UnixNano())
	if out := stderrOf(t, func() { logPanic("worker", "later") }); !strings.Contains(out, "panic in the worker: later") {
		t.Fatalf("a panic after the interval logged as %q", out)
	}
}

func TestHandingOffAfterTheHandlerLogsOnlyARealPanic(t *testing.T) {
	tap := startTap(t)
	s, err := validate(testConfig(tap.server.URL))
	if err != nil {
		t.Fatal(err)
	}
	atomic.StoreInt64(&lastPanicLog, 0)
	healthy := &capture{pool: newPool(s.pool), declared: -1}
	if out := stderrOf(t, func() { finish(healthy) }); out != "" {
		t.Fatalf("a hand-off without a panic logged %q", out)
	}
	// No pool: the hand-off dereferences nil, and the panic stays in the plugin.
	if out := stderrOf(t, func() { finish(&capture{declared: -1}) }); !strings.Contains(out, "recovered from a panic in the request path") {
		t.Fatalf("a panicking hand-off logged %q", out)
	}
}
