package requestmirror

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// The capture's buffer grows as the upstream reads: to the declared length at once when there is one, else by
// doubling from 4 KiB, never past the cap, each growth reserved from the pool's byte budget (unit: the plugin's
// own allocation policy, which decides how many bytes a pool holds).

func growthCapture(t *testing.T, declared int64, limit int64) (*capture, *pool) {
	t.Helper()
	s, err := validate(testConfig("http://127.0.0.1:9"))
	if err != nil {
		t.Fatal(err)
	}
	p := newPool(s.pool)
	c := newCapture(p, s, httptest.NewRequest(http.MethodPost, "/", nil))
	c.declared = declared
	c.limit = limit
	return c, p
}

// readChunks records reads of the given sizes and returns the buffer's capacity after each.
func readChunks(c *capture, sizes ...int) []int {
	var caps []int
	for _, n := range sizes {
		c.record(bytes.Repeat([]byte("r"), n), nil)
		caps = append(caps, cap(c.body))
	}
	return caps
}

func TestAnUnknownLengthBodyGrowsByDoublingFrom4KiBUpToTheCap(t *testing.T) {
	c, p := growthCapture(t, -1, 20*kib)
	sizes := make([]int, 17)
	for i := range sizes {
		sizes[i] = kib
	}
	caps := readChunks(c, sizes...)
	want := map[int]int{0: 4 * kib, 3: 4 * kib, 4: 8 * kib, 8: 16 * kib, 16: 20 * kib}
	for i, w := range want {
		if caps[i] != w {
			t.Fatalf("capacity after %d KiB read: %d, want %d (all: %v)", i+1, caps[i], w, caps)
		}
	}
	if c.reserved != int64(cap(c.body)) || atomic.LoadInt64(&p.budget) != c.reserved {
		t.Fatalf("reserved %d, pool budget %d, capacity %d: want all equal", c.reserved, atomic.LoadInt64(&p.budget), cap(c.body))
	}
}

func TestADeclaredLengthIsAllocatedAtOnceButNeverPastTheCap(t *testing.T) {
	c, _ := growthCapture(t, 10*kib, 20*kib)
	if caps := readChunks(c, kib); caps[0] != 10*kib {
		t.Fatalf("capacity %d after the first read of a 10 KiB body, want %d", caps[0], 10*kib)
	}
	c, _ = growthCapture(t, 30*kib, 20*kib)
	if caps := readChunks(c, kib); caps[0] != 20*kib {
		t.Fatalf("capacity %d after the first read of a 30 KiB body capped at 20 KiB, want %d", caps[0], 20*kib)
	}
}

func TestAReadLargerThanTheNextStepIsTakenWhole(t *testing.T) {
	c, p := growthCapture(t, -1, 20*kib)
	if caps := readChunks(c, 6*kib); caps[0] != 6*kib {
		t.Fatalf("capacity %d after a 6 KiB first read, want %d", caps[0], 6*kib)
	}
	if c.reserved != 6*kib || atomic.LoadInt64(&p.budget) != 6*kib {
		t.Fatalf("reserved %d, pool budget %d, want %d", c.reserved, atomic.LoadInt64(&p.budget), 6*kib)
	}
}
