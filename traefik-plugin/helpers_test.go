package requestmirror

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// A real HTTP server standing in for the tap's ingest listener: it decodes every batch it receives.

type received struct {
	header   BatchHeader
	snapshot Snapshot
	body     []byte
}

type fakeTap struct {
	server *httptest.Server
	mu     sync.Mutex
	got    []received
	heads  []BatchHeader
	status int
}

func startTap(t *testing.T) *fakeTap {
	t.Helper()
	ft := &fakeTap{status: http.StatusNoContent}
	ft.server = httptest.NewServer(http.HandlerFunc(ft.handle))
	// A closure, not the method value: Yaegi types ft.server.Close as func(*httptest.Server).
	t.Cleanup(func() { ft.server.Close() })
	return ft
}

func (ft *fakeTap) handle(rw http.ResponseWriter, req *http.Request) {
	data, err := io.ReadAll(req.Body)
	if err != nil || req.URL.Path != ingestPath || req.Header.Get("Content-Type") != batchContentType {
		rw.WriteHeader(http.StatusBadRequest)
		return
	}
	head, snaps, bodies, err := decodeBatch(data)
	if err != nil {
		rw.WriteHeader(http.StatusBadRequest)
		return
	}
	ft.mu.Lock()
	ft.heads = append(ft.heads, head)
	for i := range snaps {
		ft.got = append(ft.got, received{header: head, snapshot: snaps[i], body: bodies[i]})
	}
	status := ft.status
	ft.mu.Unlock()
	rw.WriteHeader(status)
}

func (ft *fakeTap) snapshots() []received {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	out := make([]received, len(ft.got))
	copy(out, ft.got)
	return out
}

// waitFor polls until n snapshots arrived or the deadline passes.
func (ft *fakeTap) waitFor(t *testing.T, n int) []received {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := ft.snapshots()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("expected %d snapshots at the tap, got %d", n, len(got))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func decodeBatch(data []byte) (BatchHeader, []Snapshot, [][]byte, error) {
	var head BatchHeader
	var snaps []Snapshot
	var bodies [][]byte
	first := true
	for len(data) > 0 {
		meta, body, rest, err := readFrame(data)
		if err != nil {
			return head, nil, nil, err
		}
		data = rest
		if first {
			first = false
			if err := json.Unmarshal(meta, &head); err != nil {
				return head, nil, nil, err
			}
			continue
		}
		var s Snapshot
		if err := json.Unmarshal(meta, &s); err != nil {
			return head, nil, nil, err
		}
		snaps = append(snaps, s)
		bodies = append(bodies, body)
	}
	return head, snaps, bodies, nil
}

func readFrame(data []byte) ([]byte, []byte, []byte, error) {
	if len(data) < 4 {
		return nil, nil, nil, fmt.Errorf("short frame")
	}
	n := int(binary.BigEndian.Uint32(data))
	if len(data) < 8+n {
		return nil, nil, nil, fmt.Errorf("short meta")
	}
	meta := data[4 : 4+n]
	m := int(binary.BigEndian.Uint32(data[4+n:]))
	if len(data) < 8+n+m {
		return nil, nil, nil, fmt.Errorf("short body")
	}
	return meta, data[8+n : 8+n+m], data[8+n+m:], nil
}

// testConfig is a valid config pointing at the given tap.
func testConfig(tapURL string) *Config {
	cfg := CreateConfig()
	cfg.TapURL = tapURL
	return cfg
}

// readingUpstream reads the whole body and answers with its length and a hash-free echo of its size.
type readingUpstream struct {
	mu   sync.Mutex
	seen [][]byte
}

func (u *readingUpstream) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	u.mu.Lock()
	u.seen = append(u.seen, b)
	u.mu.Unlock()
	rw.WriteHeader(http.StatusCreated)
}

func mustNew(t *testing.T, next http.Handler, cfg *Config) http.Handler {
	t.Helper()
	h, err := New(context.Background(), next, cfg, "test")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

func serve(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func headerValues(s Snapshot, name string) []string {
	var out []string
	for i := 0; i+1 < len(s.Headers); i += 2 {
		if s.Headers[i] == name {
			out = append(out, s.Headers[i+1])
		}
	}
	return out
}
