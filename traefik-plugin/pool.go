package requestmirror

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Traefik calls New for every router on every dynamic-configuration reload and never says when a middleware is
// gone, so workers cannot belong to a middleware: they belong to a pool shared by every middleware with the same
// pool settings, kept here for the life of the process. Workers start on demand and stop after a minute idle, so
// a pool whose settings are no longer used costs no goroutine and, once its idle connections expire, no socket.

var (
	poolsMu sync.Mutex
	pools   = map[string]*pool{}
)

const (
	workerIdle = time.Minute
	// Bytes counted for a snapshot besides its body, so a flood of body-less requests is bounded by bytes too.
	overheadBytes = 512
	ingestPath    = "/v1/snapshots"
)

type pool struct {
	settings poolSettings
	queue    chan *capture
	client   *http.Client
	endpoint string
	reporter string
	counters *counters

	// budget is the bytes held for the tap (captures under way, queued, being sent); atomic.
	budget int64
	// running is the number of live workers; atomic.
	running int32
	// idle is how long a worker waits for a capture before it stops (workerIdle; shorter in tests).
	idle time.Duration
}

// poolFor returns the pool for these settings, creating it the first time.
func poolFor(s poolSettings) *pool {
	key := s.key()
	poolsMu.Lock()
	defer poolsMu.Unlock()
	if p, ok := pools[key]; ok {
		return p
	}
	p := newPool(s)
	pools[key] = p
	logInfo(fmt.Sprintf("worker pool for %s started (reporter %s)", s.TapURL, p.reporter))
	return p
}

func newPool(s poolSettings) *pool {
	dialer := &net.Dialer{Timeout: time.Duration(s.DialTimeoutMs) * time.Millisecond, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		// A closure, not the method value dialer.DialContext: Yaegi types that as a func taking the *net.Dialer
		// first and refuses the field.
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost:   s.Workers,
		MaxConnsPerHost:       s.Workers,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: time.Duration(s.TimeoutMs) * time.Millisecond,
		TLSHandshakeTimeout:   time.Duration(s.DialTimeoutMs) * time.Millisecond,
		DisableCompression:    true,
	}
	return &pool{
		settings: s,
		queue:    make(chan *capture, s.MaxQueueEvents),
		client:   &http.Client{Transport: transport, Timeout: time.Duration(s.TimeoutMs) * time.Millisecond},
		endpoint: s.TapURL + ingestPath,
		reporter: newReporterID(),
		counters: newCounters(),
		idle:     workerIdle,
	}
}

func newReporterID() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return fmt.Sprintf("t%d", time.Now().UnixNano())
	}
	return hex.EncodeToString(b)
}

// reserve takes n bytes of the budget; false (and nothing taken) when that would exceed maxQueueBytes.
func (p *pool) reserve(n int64) bool {
	if atomic.AddInt64(&p.budget, n) > p.settings.MaxQueueBytes {
		atomic.AddInt64(&p.budget, -n)
		return false
	}
	return true
}

func (p *pool) release(n int64) {
	atomic.AddInt64(&p.budget, -n)
}

// enqueue hands a finished capture to the workers without ever waiting: when the queue is full in events or in
// bytes, the capture is dropped and counted.
func (p *pool) enqueue(c *capture) {
	if !p.reserve(overheadBytes) {
		p.drop(c, reasonQueueBytes)
		return
	}
	c.reserved += overheadBytes
	// Counted before the send: a worker may take the capture and report the counters before this goroutine runs on.
	p.counters.add(&p.counters.queued, 1)
	select {
	case p.queue <- c:
	default:
		p.counters.add(&p.counters.queued, -1)
		p.drop(c, reasonQueueFull)
		return
	}
	p.ensureWorker()
}

func (p *pool) drop(c *capture, reason int) {
	p.release(c.reserved)
	c.reserved = 0
	p.counters.dropped(reason, 1)
	p.counters.maybeLog(p.settings.TapURL)
}

// ensureWorker starts a worker when fewer than `workers` run. A worker that stops for idleness checks the queue
// again after leaving, so a capture enqueued at that moment is never stranded.
func (p *pool) ensureWorker() {
	for {
		n := atomic.LoadInt32(&p.running)
		if n >= int32(p.settings.Workers) {
			return
		}
		if atomic.CompareAndSwapInt32(&p.running, n, n+1) {
			go p.work()
			return
		}
	}
}

func (p *pool) work() {
	defer func() {
		r := recover()
		atomic.AddInt32(&p.running, -1)
		if r != nil {
			// Not restarted from here, which could spin on a panic that repeats: the next enqueue starts a worker.
			logPanic("worker", r)
			return
		}
		if len(p.queue) > 0 {
			p.ensureWorker()
		}
	}()
	idle := time.NewTimer(p.idle)
	defer idle.Stop()
	var frames bytes.Buffer
	for {
		var first *capture
		// `case c := <-ch` and not `case first = <-ch`: Yaegi v0.16.1 panics on the assignment form
		// ("reflect.Select: invalid Dir").
		select {
		case c := <-p.queue:
			first = c
		case <-idle.C:
			return
		}
		batch := []*capture{first}
		size := int64(len(first.body))
		// A flag, not `break fill` out of the select: Yaegi v0.16.1 breaks only the select, and the loop spins.
		more := true
		for more && len(batch) < p.settings.MaxBatchEvents && size < p.settings.MaxBatchBytes {
			select {
			case c := <-p.queue:
				batch = append(batch, c)
				size += int64(len(c.body))
			default:
				more = false
			}
		}
		p.ship(batch, &frames)
		if !idle.Stop() {
			select {
			case <-idle.C:
			default:
			}
		}
		idle.Reset(p.idle)
	}
}

// ship encodes and POSTs one batch, then releases its bytes whatever happened. Every snapshot in it ends counted
// as sent or dropped, a panic included (the worker then goes on with the next batch).
func (p *pool) ship(batch []*capture, frames *bytes.Buffer) {
	var held int64
	for _, c := range batch {
		held += c.reserved
	}
	counted := false
	defer func() {
		if r := recover(); r != nil {
			logPanic("worker", r)
			if !counted {
				p.counters.dropped(reasonInternalError, int64(len(batch)))
			}
		}
		p.release(held)
		// A batch buffer that grew for large bodies is not kept between batches.
		if frames.Cap() > 4*mib {
			*frames = bytes.Buffer{}
		}
	}()
	frames.Reset()
	var bodyBytes int64
	if err := encodeBatch(frames, p.reporter, p.counters.snapshot(), batch); err != nil {
		counted = true
		p.counters.dropped(reasonEncodeFailed, int64(len(batch)))
		p.counters.noteError(err)
		p.counters.maybeLog(p.settings.TapURL)
		return
	}
	for _, c := range batch {
		bodyBytes += int64(len(c.body))
		// The body is in the frame now; let it go before the POST, which may take up to timeoutMs.
		c.body = nil
		c.header = nil
	}
	status, err := p.post(frames.Bytes())
	counted = true
	switch {
	case err != nil:
		p.counters.dropped(reasonSendFailed, int64(len(batch)))
		p.counters.noteError(err)
	case status < 200 || status > 299:
		p.counters.dropped(reasonRejected, int64(len(batch)))
		p.counters.noteError(fmt.Errorf("the tap answered %d", status))
	default:
		p.counters.add(&p.counters.sent, int64(len(batch)))
		p.counters.add(&p.counters.sentBodyBytes, bodyBytes)
	}
	p.counters.maybeLog(p.settings.TapURL)
}

func (p *pool) post(payload []byte) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(p.settings.TimeoutMs)*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, bytes.NewReader(payload))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", batchContentType)
	res, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	// Read to the end (bounded) so the connection goes back to the pool for the next batch.
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64*kib))
	_ = res.Body.Close()
	return res.StatusCode, nil
}
