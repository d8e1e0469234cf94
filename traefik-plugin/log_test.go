package requestmirror

import (
	"sync/atomic"
	"testing"
	"time"
)

// What reaches Traefik's log (the plugin's stderr, logged at ERROR): drops and recovered panics, each at most one
// line per logInterval, so a dead tap or a panic on every request cannot flood it. Read from the state each line
// leaves (the time and total of the last line): other tests' workers log to the same stderr concurrently, so the
// tests do not swap it.

func TestDropsAreLoggedOnceAnIntervalWithTheTotalOfEveryReason(t *testing.T) {
	c := newCounters()
	c.dropped(reasonQueueFull, 2)
	c.dropped(reasonInternalError, 1)
	c.maybeLog("http://tap.example")
	first := c.lastLog
	if first.IsZero() || c.lastDrops != 3 {
		t.Fatalf("first drops: line at %v with total %d, want a line with 3", first, c.lastDrops)
	}
	c.dropped(reasonSendFailed, 1)
	c.maybeLog("http://tap.example")
	if c.lastLog != first || c.lastDrops != 3 {
		t.Fatalf("a second line within the interval (total %d)", c.lastDrops)
	}
	// The interval has passed.
	past := time.Now().Add(-logInterval - time.Second)
	c.lastLog = past
	c.maybeLog("http://tap.example")
	if !c.lastLog.After(past) || c.lastDrops != 4 {
		t.Fatalf("drops after the interval: line at %v with total %d, want a new line with 4", c.lastLog, c.lastDrops)
	}
	// Nothing new dropped: nothing to say, however long it has been.
	c.lastLog = past
	c.maybeLog("http://tap.example")
	if c.lastLog != past {
		t.Fatal("a line without new drops")
	}
}

func TestRecoveredPanicsAreLoggedOnceAnInterval(t *testing.T) {
	atomic.StoreInt64(&lastPanicLog, 0)
	logPanic("worker", "first")
	first := atomic.LoadInt64(&lastPanicLog)
	if first == 0 {
		t.Fatal("the first panic was not logged")
	}
	logPanic("worker", "second")
	if atomic.LoadInt64(&lastPanicLog) != first {
		t.Fatal("a second panic within the interval was logged")
	}
	past := time.Now().Add(-logInterval - time.Second).UnixNano()
	atomic.StoreInt64(&lastPanicLog, past)
	logPanic("worker", "later")
	if atomic.LoadInt64(&lastPanicLog) <= past {
		t.Fatal("a panic after the interval was not logged")
	}
}

func TestHandingOffAfterTheHandlerLogsOnlyARealPanic(t *testing.T) {
	tap := startTap(t)
	s, err := validate(testConfig(tap.server.URL))
	if err != nil {
		t.Fatal(err)
	}
	atomic.StoreInt64(&lastPanicLog, 0)
	finish(&capture{pool: newPool(s.pool), declared: -1})
	if atomic.LoadInt64(&lastPanicLog) != 0 {
		t.Fatal("a hand-off without a panic logged one")
	}
	// No pool: the hand-off dereferences nil, and the panic stays in the plugin.
	finish(&capture{declared: -1})
	if atomic.LoadInt64(&lastPanicLog) == 0 {
		t.Fatal("a panicking hand-off was not logged")
	}
}
