package ids

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// New returns a new id such as "p_019a2b3c4d5e9f8e7d6c5b4a3928": prefix, an
// underscore and 28 hex digits. It is safe for concurrent use.
func New(prefix string) string {
	var b [14]byte
	ms := uint64(time.Now().UnixMilli())
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails (Go 1.24+)
	return prefix + "_" + hex.EncodeToString(b[:])
}
