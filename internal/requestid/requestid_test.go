package requestid

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewIsValidAndUnique(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		id := New()
		if len(id) != 32 || !Valid(id) || strings.ToLower(id) != id {
			t.Fatalf("New() = %q, want 32 lowercase hex characters", id)
		}
		if seen[id] {
			t.Fatalf("New() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestValid(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"", false},
		{"abc-DEF_123.x:y/z+w=", true},
		{strings.Repeat("a", MaxLen), true},
		{strings.Repeat("a", MaxLen+1), false},
		{"a b", false},
		{"a\r\nX-Injected: 1", false},
		{`a"b`, false},
		{"é", false},
		{"a\x00", false},
	}
	for _, tt := range tests {
		if got := Valid(tt.id); got != tt.want {
			t.Errorf("Valid(%q) = %t, want %t", tt.id, got, tt.want)
		}
	}
}

func TestContext(t *testing.T) {
	if got := FromContext(context.Background()); got != "" {
		t.Fatalf("FromContext(empty) = %q", got)
	}
	if got := FromContext(NewContext(context.Background(), "x1")); got != "x1" {
		t.Fatalf("FromContext = %q, want x1", got)
	}
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = New()
	}
}
