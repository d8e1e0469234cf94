package requestmirror

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTeeKeepsAtMostMaxBodyBytesAndTheUpstreamGetsEveryByte(t *testing.T) {
	const limit = 1000
	cases := []struct {
		name      string
		size      int
		chunked   bool
		truncated bool
	}{
		{"cap-1", limit - 1, false, false},
		{"cap", limit, false, false},
		{"cap+1", limit + 1, false, true},
		{"chunked cap-1", limit - 1, true, false},
		{"chunked cap", limit, true, false},
		{"chunked cap+1", limit + 1, true, true},
		{"chunked 10x cap", 10 * limit, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tap := startTap(t)
			cfg := testConfig(tap.server.URL)
			cfg.MaxBodyBytes = limit
			cfg.MaxQueueBytes = 64 * limit
			up := &readingUpstream{}
			h := mustNew(t, up, cfg)
			body := bytes.Repeat([]byte{0, 0xff, 'a', 0x80}, tc.size/4+1)[:tc.size]
			var r io.Reader = bytes.NewReader(body)
			if tc.chunked {
				// Hides the length, as a chunked request does: ContentLength -1.
				r = io.MultiReader(r)
			}
			req := httptest.NewRequest(http.MethodPost, "/upload", r)
			if tc.chunked {
				req.ContentLength = -1
				req.TransferEncoding = []string{"chunked"}
			}
			if rec := serve(h, req); rec.Code != http.StatusCreated {
				t.Fatalf("status %d", rec.Code)
			}
			if !bytes.Equal(up.seen[0], body) {
				t.Fatalf("upstream got %d bytes, want %d unchanged", len(up.seen[0]), len(body))
			}
			got := tap.waitFor(t, 1)[0]
			want := tc.size
			if want > limit {
				want = limit
			}
			if !bytes.Equal(got.body, body[:want]) {
				t.Fatalf("captured %d bytes, want the first %d", len(got.body), want)
			}
			if got.snapshot.ReceivedBytes < int64(want) || (tc.truncated != (got.snapshot.ReceivedBytes > int64(len(got.body)))) {
				t.Fatalf("receivedBytes %d with %d captured: truncated should be %v", got.snapshot.ReceivedBytes, len(got.body), tc.truncated)
			}
			if !got.snapshot.Complete {
				t.Fatal("a body read to its end or past the cap is complete")
			}
			wantDeclared := int64(tc.size)
			if tc.chunked {
				wantDeclared = -1
			}
			if got.snapshot.DeclaredLength != wantDeclared {
				t.Fatalf("declaredLength %d, want %d", got.snapshot.DeclaredLength, wantDeclared)
			}
		})
	}
}

func TestTeeNeverAllocatesPastTheCap(t *testing.T) {
	p := newPool(poolSettings{TapURL: "http://127.0.0.1:1", MaxQueueEvents: 1, MaxQueueBytes: mib, Workers: 1, MaxBatchEvents: 1, MaxBatchBytes: mib, TimeoutMs: 1, DialTimeoutMs: 1})
	s := &settings{allMethods: true, maxBodyBytes: 10000}
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("x", 50000)))
	req.ContentLength = -1
	c := newCapture(p, s, req)
	// 10,000 bytes of a body of unknown length: the capture is full but not handed yet (the next read decides).
	chunk := make([]byte, 3000)
	for i := 0; i < 3; i++ {
		c.observe(chunk, nil)
	}
	c.observe(chunk[:1000], nil)
	if cap(c.body) > 10000 || len(c.body) != 10000 {
		t.Fatalf("body len %d cap %d, want 10000 and at most 10000", len(c.body), cap(c.body))
	}
}

func TestRequestWithoutBodyLeavesBeforeTheUpstreamAnswers(t *testing.T) {
	tap := startTap(t)
	release := make(chan struct{})
	defer close(release)
	// An upstream holding the request open, as a WebSocket or SSE stream does.
	slow := http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		<-release
	})
	h := mustNew(t, slow, testConfig(tap.server.URL))
	req := httptest.NewRequest(http.MethodGet, "/socket?x=1", nil)
	req.Header.Set("Upgrade", "websocket")
	go serve(h, req)
	got := tap.waitFor(t, 1)[0].snapshot
	if got.Method != http.MethodGet || got.URI != "/socket?x=1" || !got.Complete || got.ReceivedBytes != 0 {
		t.Fatalf("unexpected snapshot %+v", got)
	}
	if v := headerValues(got, "Upgrade"); len(v) != 1 || v[0] != "websocket" {
		t.Fatalf("Upgrade header %v", v)
	}
}

func TestBodyTheUpstreamNeverReadsIsSentMarkedIncompleteWhenTheHandlerReturns(t *testing.T) {
	tap := startTap(t)
	ignoring := http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		buf := make([]byte, 10)
		_, _ = io.ReadFull(req.Body, buf)
		rw.WriteHeader(http.StatusTeapot)
	})
	h := mustNew(t, ignoring, testConfig(tap.server.URL))
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("y", 100)))
	if rec := serve(h, req); rec.Code != http.StatusTeapot {
		t.Fatalf("status %d", rec.Code)
	}
	got := tap.waitFor(t, 1)[0]
	if got.snapshot.Complete || string(got.body) != strings.Repeat("y", 10) || got.snapshot.DeclaredLength != 100 {
		t.Fatalf("want 10 bytes of 100, incomplete; got %q complete=%v", got.body, got.snapshot.Complete)
	}
}

func TestBodyLeavesAtTheCapWhileTheUpstreamIsStillReading(t *testing.T) {
	tap := startTap(t)
	cfg := testConfig(tap.server.URL)
	cfg.MaxBodyBytes = 100
	pr, pw := io.Pipe()
	defer pw.Close()
	upstreamDone := make(chan struct{})
	up := http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		close(upstreamDone)
	})
	h := mustNew(t, up, cfg)
	req := httptest.NewRequest(http.MethodPut, "/stream", pr)
	req.ContentLength = -1
	go serve(h, req)
	if _, err := pw.Write(bytes.Repeat([]byte("z"), 150)); err != nil {
		t.Fatal(err)
	}
	got := tap.waitFor(t, 1)[0]
	if len(got.body) != 100 || got.snapshot.ReceivedBytes != 150 {
		t.Fatalf("captured %d of %d", len(got.body), got.snapshot.ReceivedBytes)
	}
	// The upstream is still reading: the pipe stays open until the test returns.
	select {
	case <-upstreamDone:
		t.Fatal("the upload should still be under way")
	default:
	}
}

func TestABodyLongerThanTheCapIsMarkedSoWhenAReadEndsExactlyAtTheCap(t *testing.T) {
	for _, declared := range []int64{150, -1} {
		tap := startTap(t)
		cfg := testConfig(tap.server.URL)
		cfg.MaxBodyBytes = 100
		// Reads of exactly the cap, then the rest.
		up := http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
			buf := make([]byte, 100)
			_, _ = io.ReadFull(req.Body, buf)
			_, _ = io.Copy(io.Discard, req.Body)
		})
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(bytes.Repeat([]byte("c"), 150)))
		req.ContentLength = declared
		serve(mustNew(t, up, cfg), req)
		got := tap.waitFor(t, 1)[0]
		if len(got.body) != 100 || got.snapshot.ReceivedBytes <= 100 {
			t.Fatalf("declared %d: captured %d, received %d: want 100 kept of more than 100 received", declared, len(got.body), got.snapshot.ReceivedBytes)
		}
	}
}

func TestABodyOfExactlyTheDeclaredCapLeavesWithoutWaitingForItsEnd(t *testing.T) {
	tap := startTap(t)
	cfg := testConfig(tap.server.URL)
	cfg.MaxBodyBytes = 100
	pr, pw := io.Pipe()
	defer pw.Close()
	up := http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
	})
	req := httptest.NewRequest(http.MethodPost, "/exact", pr)
	req.ContentLength = 100
	go serve(mustNew(t, up, cfg), req)
	// All 100 declared bytes, and no end of the body yet: the pipe stays open.
	if _, err := pw.Write(bytes.Repeat([]byte("e"), 100)); err != nil {
		t.Fatal(err)
	}
	got := tap.waitFor(t, 1)[0]
	if len(got.body) != 100 || got.snapshot.ReceivedBytes != 100 || !got.snapshot.Complete {
		t.Fatalf("captured %d, received %d, complete %v: want the whole 100-byte body, complete", len(got.body), got.snapshot.ReceivedBytes, got.snapshot.Complete)
	}
}

func TestMethodsNotListedPassThroughUnmirrored(t *testing.T) {
	tap := startTap(t)
	cfg := testConfig(tap.server.URL)
	cfg.Methods = []string{"POST"}
	up := &readingUpstream{}
	h := mustNew(t, up, cfg)
	serve(h, httptest.NewRequest(http.MethodGet, "/not-mirrored", nil))
	serve(h, httptest.NewRequest(http.MethodPost, "/mirrored", strings.NewReader("b")))
	// Both requests were served to their end: a snapshot of each would have been queued by now.
	if queued := poolOf(h).counters.snapshot().Queued; queued != 1 {
		t.Fatalf("%d snapshots queued, want 1", queued)
	}
	got := tap.waitFor(t, 1)
	if len(got) != 1 || got[0].snapshot.URI != "/mirrored" {
		t.Fatalf("want only /mirrored, got %d snapshots", len(got))
	}
	if len(up.seen) != 2 {
		t.Fatalf("upstream saw %d requests", len(up.seen))
	}
}

func TestCookiesNotNamedNeverLeaveTraefik(t *testing.T) {
	tap := startTap(t)
	cfg := testConfig(tap.server.URL)
	cfg.CookieNames = []string{"session"}
	up := &readingUpstream{}
	h := mustNew(t, up, cfg)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Add("Cookie", "theme=dark; session=s3cr3t")
	req.Header.Add("Cookie", "tracker=1")
	req.Header.Set("Authorization", "Bearer x")
	serve(h, req)
	got := tap.waitFor(t, 1)[0].snapshot
	if v := headerValues(got, "Cookie"); len(v) != 1 || v[0] != "session=s3cr3t" {
		t.Fatalf("Cookie %q", v)
	}
	// The tap redacts Authorization by its own rules, as for the other attachments.
	if v := headerValues(got, "Authorization"); len(v) != 1 {
		t.Fatalf("Authorization %q", v)
	}
	if v := headerValues(got, "Host"); len(v) != 1 || v[0] != "example.com" {
		t.Fatalf("Host %q", v)
	}
	if up.seen == nil || req.Header.Get("Cookie") != "theme=dark; session=s3cr3t" {
		t.Fatal("the upstream's request must keep its cookies")
	}
}

func TestNoNamedCookieLeavesAnEmptyCookieHeader(t *testing.T) {
	if got := keepCookies([]string{"a=1; b=2", "junk; =x"}, map[string]bool{}); got != "" {
		t.Fatalf("got %q", got)
	}
	if got := keepCookies([]string{"a=1; b=2", "c=3"}, map[string]bool{"a": true, "c": true}); got != "a=1; c=3" {
		t.Fatalf("got %q", got)
	}
}
