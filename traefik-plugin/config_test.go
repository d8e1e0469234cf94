package requestmirror

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

func TestCreateConfigWithATapURLIsValid(t *testing.T) {
	s, err := validate(testConfig("http://127.0.0.1:8082/"))
	if err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
	if !s.allMethods || s.maxBodyBytes != mib || s.pool.TapURL != "http://127.0.0.1:8082" {
		t.Fatalf("unexpected settings: %+v", s)
	}
}

func TestNewRejectsBadConfigNamingTheFieldAndValue(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no tap", func(c *Config) { c.TapURL = "" }, "tapURL: required"},
		{"tap not http", func(c *Config) { c.TapURL = "nats://tap:4222" }, `tapURL: must be an http:// or https:// URL with a host, got "nats://tap:4222"`},
		{"tap with query", func(c *Config) { c.TapURL = "http://tap:8082/?x=1" }, "tapURL: must have no query"},
		{"no methods", func(c *Config) { c.Methods = nil }, "methods: must name at least one method"},
		{"bad method", func(c *Config) { c.Methods = []string{"GET", "PO ST"} }, `methods: "PO ST" is not an HTTP method`},
		{"bad cookie", func(c *Config) { c.CookieNames = []string{"a;b"} }, `cookieNames: "a;b" is not a cookie name`},
		{"negative body", func(c *Config) { c.MaxBodyBytes = -1 }, "maxBodyBytes: must be between 0 and 67108864, got -1"},
		{"no queue", func(c *Config) { c.MaxQueueEvents = 0 }, "maxQueueEvents: must be between 1 and 1000000, got 0"},
		{"queue below body", func(c *Config) { c.MaxQueueBytes = 1000 }, "maxQueueBytes: must be at least maxBodyBytes (1048576), got 1000"},
		{"no workers", func(c *Config) { c.Workers = 0 }, "workers: must be between 1 and 64, got 0"},
		{"no batch", func(c *Config) { c.MaxBatchEvents = 0 }, "maxBatchEvents: must be between 1 and 10000, got 0"},
		{"no batch bytes", func(c *Config) { c.MaxBatchBytes = 0 }, "maxBatchBytes: must be between 1 and 268435456, got 0"},
		{"no timeout", func(c *Config) { c.TimeoutMs = 0 }, "timeoutMs: must be between 1 and 600000, got 0"},
		{"no dial timeout", func(c *Config) { c.DialTimeoutMs = -5 }, "dialTimeoutMs: must be between 1 and 600000, got -5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("http://127.0.0.1:8082")
			tc.change(cfg)
			h, err := New(context.Background(), http.NotFoundHandler(), cfg, "test")
			if err == nil || h != nil {
				t.Fatalf("expected an error containing %q, got handler %v, error %v", tc.want, h, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err.Error(), tc.want)
			}
		})
	}
}

func TestMethodsAreMatchedCaseInsensitivelyFromTheConfig(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:8082")
	cfg.Methods = []string{"post", " PUT "}
	s, err := validate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.allMethods || !s.methods["POST"] || !s.methods["PUT"] || s.methods["GET"] {
		t.Fatalf("unexpected methods: %v", s.methods)
	}
}

func TestEveryNumericOptionTakesBothEndsOfItsRangeAndNothingPast(t *testing.T) {
	cases := []struct {
		field  string
		set    func(*Config, int)
		lo, hi int
	}{
		{"maxBodyBytes", func(c *Config, v int) { c.MaxBodyBytes = v; c.MaxQueueBytes = 64 * mib }, 0, 64 * mib},
		{"maxQueueEvents", func(c *Config, v int) { c.MaxQueueEvents = v }, 1, 1000000},
		{"maxQueueBytes", func(c *Config, v int) { c.MaxQueueBytes = v; c.MaxBodyBytes = 0 }, 1, 4096 * mib},
		{"workers", func(c *Config, v int) { c.Workers = v }, 1, 64},
		{"maxBatchEvents", func(c *Config, v int) { c.MaxBatchEvents = v }, 1, 10000},
		{"maxBatchBytes", func(c *Config, v int) { c.MaxBatchBytes = v }, 1, 256 * mib},
		{"timeoutMs", func(c *Config, v int) { c.TimeoutMs = v }, 1, 600000},
		{"dialTimeoutMs", func(c *Config, v int) { c.DialTimeoutMs = v }, 1, 600000},
	}
	for _, tc := range cases {
		for _, v := range []int{tc.lo, tc.hi} {
			cfg := testConfig("http://127.0.0.1:8082")
			tc.set(cfg, v)
			if _, err := validate(cfg); err != nil {
				t.Errorf("%s = %d rejected: %v", tc.field, v, err)
			}
		}
		for _, v := range []int{tc.lo - 1, tc.hi + 1} {
			cfg := testConfig("http://127.0.0.1:8082")
			tc.set(cfg, v)
			want := tc.field + ": must be between"
			if _, err := validate(cfg); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s = %d: want an error containing %q, got %v", tc.field, v, want, err)
			}
		}
	}
}

func TestQueueBytesEqualToTheBodyCapAreEnough(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:8082")
	cfg.MaxBodyBytes = 4096
	cfg.MaxQueueBytes = 4096
	if _, err := validate(cfg); err != nil {
		t.Fatalf("maxQueueBytes = maxBodyBytes rejected: %v", err)
	}
}

func TestTokensTakeEveryLetterDigitAndTcharAndNothingElse(t *testing.T) {
	// The ends of each character range, and each of the tchar punctuation marks (RFC 9110 5.6.2).
	for _, name := range []string{"azAZ09", "!", "#", "$", "%", "&", "'", "*x", "+", "-", ".", "^", "_", "`", "|", "~"} {
		if !isToken(name) {
			t.Errorf("%q is a token", name)
		}
	}
	// The characters just outside each range, and separators.
	for _, name := range []string{"", "@", "[", "`x{", "/", ":", "a b", "a;b", "a,b", "\"q\"", "é", "a\x7f"} {
		if isToken(name) {
			t.Errorf("%q is not a token", name)
		}
	}
	cfg := testConfig("http://127.0.0.1:8082")
	cfg.Methods = []string{"azAZ09"}
	cfg.CookieNames = []string{"__Host-id!"}
	if _, err := validate(cfg); err != nil {
		t.Fatalf("token method and cookie name rejected: %v", err)
	}
}
