package requestmirror

import (
	"fmt"
	"net/url"
	"strings"
)

// Config is the Middleware's options, decoded by Traefik (mapstructure, weakly typed: a comma-separated string
// becomes a list, "42" a number) from the file provider, Docker labels or a Kubernetes Middleware's
// spec.plugin.<name>. Field names match case-insensitively. Sizes are bytes, durations milliseconds.
type Config struct {
	// TapURL is the ingress-tap's plugin ingest listener, e.g. http://ingress-tap:8082. Required.
	TapURL string `json:"tapURL,omitempty"`
	// Methods are the request methods to mirror; "*" mirrors every method.
	Methods []string `json:"methods,omitempty"`
	// CookieNames are the cookies that may leave Traefik; every other cookie is cut from the Cookie header.
	CookieNames []string `json:"cookieNames,omitempty"`
	// MaxBodyBytes is how much of each body is kept (0: none); the rest is counted, not kept.
	MaxBodyBytes int `json:"maxBodyBytes,omitempty"`
	// MaxQueueEvents bounds the snapshots waiting for a worker; beyond it new ones are dropped and counted.
	MaxQueueEvents int `json:"maxQueueEvents,omitempty"`
	// MaxQueueBytes bounds the body bytes held for the tap: captures under way, queued and being sent.
	MaxQueueBytes int `json:"maxQueueBytes,omitempty"`
	// Workers is the number of goroutines shipping batches to the tap.
	Workers int `json:"workers,omitempty"`
	// MaxBatchEvents and MaxBatchBytes bound one POST to the tap.
	MaxBatchEvents int `json:"maxBatchEvents,omitempty"`
	MaxBatchBytes  int `json:"maxBatchBytes,omitempty"`
	// TimeoutMs bounds one POST to the tap, connection included; DialTimeoutMs bounds the connection alone.
	TimeoutMs     int `json:"timeoutMs,omitempty"`
	DialTimeoutMs int `json:"dialTimeoutMs,omitempty"`
}

const (
	kib = 1024
	mib = 1024 * kib
)

// CreateConfig returns the defaults. Lists hold at most one element: mapstructure overwrites a default list
// element by element, so a longer default could leak into a shorter user list.
func CreateConfig() *Config {
	return &Config{
		Methods:        []string{"*"},
		MaxBodyBytes:   mib,
		MaxQueueEvents: 4096,
		MaxQueueBytes:  64 * mib,
		Workers:        2,
		MaxBatchEvents: 64,
		MaxBatchBytes:  4 * mib,
		TimeoutMs:      5000,
		DialTimeoutMs:  1000,
	}
}

// settings is a validated Config: what one middleware instance uses on the request path, and the key of the
// shared worker pool.
type settings struct {
	methods      map[string]bool
	allMethods   bool
	cookieNames  map[string]bool
	maxBodyBytes int64
	pool         poolSettings
}

// poolSettings are the options that decide a worker pool; middlewares with equal ones share a pool.
type poolSettings struct {
	TapURL         string
	MaxQueueEvents int
	MaxQueueBytes  int64
	Workers        int
	MaxBatchEvents int
	MaxBatchBytes  int64
	TimeoutMs      int
	DialTimeoutMs  int
}

func (p poolSettings) key() string {
	return fmt.Sprintf("%s|%d|%d|%d|%d|%d|%d|%d", p.TapURL, p.MaxQueueEvents, p.MaxQueueBytes, p.Workers,
		p.MaxBatchEvents, p.MaxBatchBytes, p.TimeoutMs, p.DialTimeoutMs)
}

// validate checks every field and returns the first problem as "<field>: <what>, got <value>", the line a Traefik
// user reads in Traefik's log.
func validate(cfg *Config) (*settings, error) {
	if cfg == nil {
		return nil, fmt.Errorf("config: missing")
	}
	tap := strings.TrimSpace(cfg.TapURL)
	if tap == "" {
		return nil, fmt.Errorf("tapURL: required (the ingress-tap's plugin listener, e.g. http://ingress-tap:8082)")
	}
	u, err := url.Parse(tap)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tapURL: must be an http:// or https:// URL with a host, got %q", cfg.TapURL)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("tapURL: must have no query, fragment or credentials, got %q", cfg.TapURL)
	}
	s := &settings{methods: map[string]bool{}, cookieNames: map[string]bool{}}
	if len(cfg.Methods) == 0 {
		return nil, fmt.Errorf("methods: must name at least one method or *, got []")
	}
	for _, m := range cfg.Methods {
		m = strings.TrimSpace(m)
		if m == "*" {
			s.allMethods = true
			continue
		}
		if !isToken(m) {
			return nil, fmt.Errorf("methods: %q is not an HTTP method", m)
		}
		s.methods[strings.ToUpper(m)] = true
	}
	for _, c := range cfg.CookieNames {
		c = strings.TrimSpace(c)
		if !isToken(c) {
			return nil, fmt.Errorf("cookieNames: %q is not a cookie name", c)
		}
		s.cookieNames[c] = true
	}
	if err := inRange("maxBodyBytes", cfg.MaxBodyBytes, 0, 64*mib); err != nil {
		return nil, err
	}
	if err := inRange("maxQueueEvents", cfg.MaxQueueEvents, 1, 1000000); err != nil {
		return nil, err
	}
	if err := inRange("maxQueueBytes", cfg.MaxQueueBytes, 1, 4096*mib); err != nil {
		return nil, err
	}
	if cfg.MaxQueueBytes < cfg.MaxBodyBytes {
		return nil, fmt.Errorf("maxQueueBytes: must be at least maxBodyBytes (%d), got %d", cfg.MaxBodyBytes, cfg.MaxQueueBytes)
	}
	if err := inRange("workers", cfg.Workers, 1, 64); err != nil {
		return nil, err
	}
	if err := inRange("maxBatchEvents", cfg.MaxBatchEvents, 1, 10000); err != nil {
		return nil, err
	}
	if err := inRange("maxBatchBytes", cfg.MaxBatchBytes, 1, 256*mib); err != nil {
		return nil, err
	}
	if err := inRange("timeoutMs", cfg.TimeoutMs, 1, 600000); err != nil {
		return nil, err
	}
	if err := inRange("dialTimeoutMs", cfg.DialTimeoutMs, 1, 600000); err != nil {
		return nil, err
	}
	s.maxBodyBytes = int64(cfg.MaxBodyBytes)
	s.pool = poolSettings{
		TapURL:         strings.TrimRight(tap, "/"),
		MaxQueueEvents: cfg.MaxQueueEvents,
		MaxQueueBytes:  int64(cfg.MaxQueueBytes),
		Workers:        cfg.Workers,
		MaxBatchEvents: cfg.MaxBatchEvents,
		MaxBatchBytes:  int64(cfg.MaxBatchBytes),
		TimeoutMs:      cfg.TimeoutMs,
		DialTimeoutMs:  cfg.DialTimeoutMs,
	}
	return s, nil
}

func inRange(field string, v, lo, hi int) error {
	if v < lo || v > hi {
		return fmt.Errorf("%s: must be between %d and %d, got %d", field, lo, hi, v)
	}
	return nil
}

// isToken reports whether s is an RFC 9110 token: what a method or a cookie name may be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if strings.IndexByte("!#$%&'*+-.^_`|~", c) < 0 {
			return false
		}
	}
	return true
}
