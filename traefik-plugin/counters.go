package requestmirror

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// What a pool did, since Traefik started: every snapshot ends sent or dropped with a reason. The counters ride
// along with every batch to the tap, which exposes them on its /metrics; problems also reach Traefik's log, at
// most one line per logInterval per pool.

const (
	reasonQueueFull = iota
	reasonQueueBytes
	reasonSendFailed
	reasonRejected
	reasonEncodeFailed
	reasonInternalError
	reasonCount
)

// Reason names as the tap's metrics label them.
var reasonNames = [reasonCount]string{"queue_full", "queue_bytes", "send_failed", "rejected", "encode_failed", "internal_error"}

const logInterval = 10 * time.Second

type counters struct {
	// Atomic; updated through add() only.
	queued        int64
	sent          int64
	sentBodyBytes int64
	budgetCuts    int64
	drops         [reasonCount]int64

	mu        sync.Mutex
	lastLog   time.Time
	lastDrops int64
	lastError string
}

func newCounters() *counters {
	return &counters{}
}

func (c *counters) add(field *int64, n int64) {
	atomic.AddInt64(field, n)
}

func (c *counters) dropped(reason int, n int64) {
	atomic.AddInt64(&c.drops[reason], n)
}

func (c *counters) totalDropped() int64 {
	var t int64
	for i := 0; i < reasonCount; i++ {
		t += atomic.LoadInt64(&c.drops[i])
	}
	return t
}

// Report is the counters as sent to the tap: cumulative since the pool started.
type Report struct {
	Queued        int64            `json:"queued"`
	Sent          int64            `json:"sent"`
	SentBodyBytes int64            `json:"sentBodyBytes"`
	BudgetCuts    int64            `json:"budgetCuts"`
	Dropped       map[string]int64 `json:"dropped"`
}

func (c *counters) snapshot() Report {
	r := Report{
		Queued:        atomic.LoadInt64(&c.queued),
		Sent:          atomic.LoadInt64(&c.sent),
		SentBodyBytes: atomic.LoadInt64(&c.sentBodyBytes),
		BudgetCuts:    atomic.LoadInt64(&c.budgetCuts),
		Dropped:       map[string]int64{},
	}
	for i := 0; i < reasonCount; i++ {
		r.Dropped[reasonNames[i]] = atomic.LoadInt64(&c.drops[i])
	}
	return r
}

func (c *counters) noteError(err error) {
	c.mu.Lock()
	c.lastError = err.Error()
	c.mu.Unlock()
}

// maybeLog writes one line to stderr (Traefik's log at ERROR) when snapshots were dropped since the last line and
// logInterval has passed.
func (c *counters) maybeLog(tap string) {
	total := c.totalDropped()
	now := time.Now()
	c.mu.Lock()
	if total == c.lastDrops || now.Sub(c.lastLog) < logInterval {
		c.mu.Unlock()
		return
	}
	c.lastLog = now
	c.lastDrops = total
	lastError := c.lastError
	c.mu.Unlock()
	r := c.snapshot()
	fmt.Fprintf(os.Stderr, "request-mirror: tap %s: %d snapshots dropped in all (%v), %d sent, %d queued; last error: %s\n",
		tap, total, r.Dropped, r.Sent, r.Queued, lastError)
}

func logInfo(msg string) {
	fmt.Fprintf(os.Stdout, "request-mirror: %s\n", msg)
}

var lastPanicLog int64

// logPanic reports a recovered panic, at most one line per logInterval for the whole process.
func logPanic(where string, r interface{}) {
	now := time.Now().UnixNano()
	last := atomic.LoadInt64(&lastPanicLog)
	if now-last < int64(logInterval) || !atomic.CompareAndSwapInt64(&lastPanicLog, last, now) {
		return
	}
	fmt.Fprintf(os.Stderr, "request-mirror: recovered from a panic in the %s: %v\n", where, r)
}
