package requestmirror

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// What a snapshot says about the request besides its headers and body: the scheme, the request target, the
// client's address, and whether an empty body is complete.

// snapshotOf serves one request through a middleware shipping to its own tap and returns the snapshot the tap got.
func snapshotOf(t *testing.T, next http.Handler, req *http.Request) received {
	t.Helper()
	tap := startTap(t)
	serve(mustNew(t, next, testConfig(tap.server.URL)), req)
	return tap.waitFor(t, 1)[0]
}

func TestSchemeIsHTTPSOverTLSElseTheForwardedProtoLowercased(t *testing.T) {
	overTLS := httptest.NewRequest(http.MethodGet, "https://a.example/x", nil)
	// A client's own X-Forwarded-Proto cannot make a TLS request plain.
	overTLS.Header.Set("X-Forwarded-Proto", "http")
	forwarded := httptest.NewRequest(http.MethodGet, "/y", nil)
	forwarded.Header.Set("X-Forwarded-Proto", "HTTPS")
	for _, tc := range []struct {
		req  *http.Request
		want string
	}{{overTLS, "https"}, {forwarded, "https"}, {httptest.NewRequest(http.MethodGet, "/z", nil), ""}} {
		if got := snapshotOf(t, &readingUpstream{}, tc.req).snapshot.Scheme; got != tc.want {
			t.Errorf("%s (TLS %v, X-Forwarded-Proto %q): scheme %q, want %q", tc.req.URL, tc.req.TLS != nil, tc.req.Header.Get("X-Forwarded-Proto"), got, tc.want)
		}
	}
}

func TestURIIsTheRequestTargetAsSentElseRebuiltFromTheURL(t *testing.T) {
	// Absolute form, as a proxy-style client sends it: kept as it came, not reduced to the URL's path.
	absolute := httptest.NewRequest(http.MethodGet, "http://abs.example/p?q=1", nil)
	absolute.RequestURI = "http://abs.example/p?q=1"
	// A request an earlier middleware built has no request line, only a URL.
	built, err := http.NewRequest(http.MethodGet, "http://b.example/built?x=1", http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		req  *http.Request
		want string
	}{{absolute, "http://abs.example/p?q=1"}, {built, "/built?x=1"}} {
		if got := snapshotOf(t, &readingUpstream{}, tc.req).snapshot.URI; got != tc.want {
			t.Errorf("RequestURI %q: URI %q, want %q", tc.req.RequestURI, got, tc.want)
		}
	}
}

func TestRemoteIPIsTheClientAddressWithoutItsPort(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.7:4321", "192.0.2.7"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		// No port to strip (a Unix socket, say): kept as it is.
		{"@listener", "@listener"},
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = tc.addr
		if got := snapshotOf(t, &readingUpstream{}, req).snapshot.RemoteIP; got != tc.want {
			t.Errorf("RemoteAddr %q: RemoteIP %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func TestEmptyBodyWithZeroLengthIsCompleteThoughTheUpstreamNeverReadsIt(t *testing.T) {
	ignoring := http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) { rw.WriteHeader(http.StatusAccepted) })
	req := httptest.NewRequest(http.MethodPost, "/empty", strings.NewReader(""))
	if req.ContentLength != 0 || req.Body == nil || req.Body == http.NoBody {
		t.Fatalf("want a zero-length request with a body reader, got length %d", req.ContentLength)
	}
	got := snapshotOf(t, ignoring, req).snapshot
	if !got.Complete || got.ReceivedBytes != 0 || got.DeclaredLength != 0 {
		t.Fatalf("want a complete empty snapshot, got %+v", got)
	}
}
