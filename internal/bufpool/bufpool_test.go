package bufpool

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestPutForeignBuffer: a buffer of another capacity is dropped, never lent
// out again as a short one; every buffer Get returns has Size bytes.
func TestPutForeignBuffer(t *testing.T) {
	var p Pool
	p.Put(make([]byte, 100))
	p.Put(make([]byte, 10, Size-1))
	for range 10 {
		b := p.Get()
		if len(b) != Size || cap(b) != Size {
			t.Fatalf("Get returned len %d cap %d, want %d", len(b), cap(b), Size)
		}
		p.Put(b[:10]) // shortened by its user: still a whole buffer when lent again
	}
}
