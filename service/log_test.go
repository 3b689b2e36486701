package service_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pier-go/pier/service"
)

// Patterns that tell the three formats apart, for the line
// logger.Info("hello", "k", "v").
var (
	jsonLine = regexp.MustCompile(`^\{"time":"[^"]+","level":"INFO","msg":"hello","k":"v"\}\n$`)
	textLine = regexp.MustCompile(`^time=\S+ level=INFO msg=hello k=v\n$`)
	tintLine = regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d\d\d INF hello k=v\n$`) // no colour: not a terminal
)

// clearLogEnv unsets the variables NewLogger reads, for the length of the test.
// Tests that call it cannot be parallel.
func clearLogEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"LOG_LEVEL", "LOG_FORMAT", "NO_COLOR"} {
		t.Setenv(k, "") // and restore the old value afterwards
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
}

// logHello makes a logger writing to a buffer, logs one line and returns it.
func logHello(t *testing.T, opts ...service.LogOption) string {
	t.Helper()
	var buf bytes.Buffer
	logger, err := service.NewLogger(append([]service.LogOption{service.WithLogOutput(&buf)}, opts...)...)
	if err != nil {
		t.Fatalf("NewLogger: %v", err)
	}
	logger.Info("hello", "k", "v")
	return buf.String()
}

func TestNewLoggerFormat(t *testing.T) {
	tests := []struct {
		name   string
		env    string // LOG_FORMAT
		opts   []service.LogOption
		wantRE *regexp.Regexp
	}{
		{"default on a buffer is json", "", nil, jsonLine},
		{"option json", "", []service.LogOption{service.WithLogFormat("json")}, jsonLine},
		{"option text", "", []service.LogOption{service.WithLogFormat("text")}, textLine},
		{"option tint", "", []service.LogOption{service.WithLogFormat("tint")}, tintLine},
		{"option in upper case", "", []service.LogOption{service.WithLogFormat("TEXT")}, textLine},
		{"empty option means default", "", []service.LogOption{service.WithLogFormat("")}, jsonLine},
		{"env json", "json", nil, jsonLine},
		{"env text", "text", nil, textLine},
		{"env tint", "tint", nil, tintLine},
		{"env in mixed case", "Tint", nil, tintLine},
		{"option beats env", "text", []service.LogOption{service.WithLogFormat("json")}, jsonLine},
		{"option beats invalid env", "xml", []service.LogOption{service.WithLogFormat("tint")}, tintLine},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearLogEnv(t)
			t.Setenv("LOG_FORMAT", tc.env)
			if got := logHello(t, tc.opts...); !tc.wantRE.MatchString(got) {
				t.Errorf("output %q does not match %v", got, tc.wantRE)
			}
		})
	}
}

// TestNewLoggerDefaultIsJSON decodes the default output on something that is not
// a terminal: a buffer, and a regular file.
func TestNewLoggerDefaultIsJSON(t *testing.T) {
	clearLogEnv(t)
	file, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = file.Close() })
	var buf bytes.Buffer

	for name, out := range map[string]io.Writer{"buffer": &buf, "file": file} {
		logger, err := service.NewLogger(service.WithLogOutput(out))
		if err != nil {
			t.Fatalf("%s: NewLogger: %v", name, err)
		}
		logger.Debug("dropped at info")
		logger.Info("served", "status", 200, slog.Group("req", "method", "GET"))
	}
	fromFile, err := os.ReadFile(file.Name())
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string][]byte{"buffer": buf.Bytes(), "file": fromFile} {
		lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if len(lines) != 1 {
			t.Fatalf("%s: got %d lines, want 1 (debug dropped): %q", name, len(lines), out)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
			t.Fatalf("%s: line %q is not JSON: %v", name, lines[0], err)
		}
		if _, ok := got["time"].(string); !ok {
			t.Errorf("%s: no time in %v", name, got)
		}
		delete(got, "time")
		want := map[string]any{"level": "INFO", "msg": "served", "status": 200.0,
			"req": map[string]any{"method": "GET"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: line (-want +got):\n%s", name, diff)
		}
	}
}

func TestNewLoggerLevel(t *testing.T) {
	tests := []struct {
		name string
		env  string // LOG_LEVEL
		opts []service.LogOption
		want []string // messages that get through, of debug, info, warn, error
	}{
		{"default is info", "", nil, []string{"info", "warn", "error"}},
		{"option debug", "", []service.LogOption{service.WithLogLevel(slog.LevelDebug)}, []string{"debug", "info", "warn", "error"}},
		{"option error", "", []service.LogOption{service.WithLogLevel(slog.LevelError)}, []string{"error"}},
		{"nil option means default", "warn", []service.LogOption{service.WithLogLevel(nil)}, []string{"warn", "error"}},
		{"env warn", "warn", nil, []string{"warn", "error"}},
		{"env in upper case", "ERROR", nil, []string{"error"}},
		{"env with offset", "info-4", nil, []string{"debug", "info", "warn", "error"}},
		{"env with positive offset", "warn+1", nil, []string{"error"}},
		{"option beats env", "error", []service.LogOption{service.WithLogLevel(slog.LevelDebug)}, []string{"debug", "info", "warn", "error"}},
		{"option beats invalid env", "loud", []service.LogOption{service.WithLogLevel(slog.LevelWarn)}, []string{"warn", "error"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearLogEnv(t)
			t.Setenv("LOG_LEVEL", tc.env)
			var buf bytes.Buffer
			opts := append([]service.LogOption{service.WithLogOutput(&buf), service.WithLogFormat("json")}, tc.opts...)
			logger, err := service.NewLogger(opts...)
			if err != nil {
				t.Fatalf("NewLogger: %v", err)
			}
			logger.Debug("debug")
			logger.Info("info")
			logger.Warn("warn")
			logger.Error("error")
			if diff := cmp.Diff(tc.want, messages(t, &buf)); diff != "" {
				t.Errorf("messages logged (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewLoggerLevelVar(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	var level slog.LevelVar // info
	logger, err := service.NewLogger(service.WithLogOutput(&buf), service.WithLogFormat("json"),
		service.WithLogLevel(&level))
	if err != nil {
		t.Fatal(err)
	}
	logger.Debug("hidden")
	level.Set(slog.LevelDebug)
	logger.Debug("shown")
	if diff := cmp.Diff([]string{"shown"}, messages(t, &buf)); diff != "" {
		t.Errorf("messages logged (-want +got):\n%s", diff)
	}
}

func TestNewLoggerInvalid(t *testing.T) {
	tests := []struct {
		name    string
		level   string // LOG_LEVEL
		format  string // LOG_FORMAT
		opts    []service.LogOption
		wantErr string // a prefix
	}{
		{"bad LOG_LEVEL", "loud", "", nil, `service: LOG_LEVEL "loud": `},
		{"LOG_LEVEL with a bad offset", "info+x", "", nil, `service: LOG_LEVEL "info+x": `},
		{"bad LOG_FORMAT", "", "xml", nil, `service: LOG_FORMAT "xml": want json, text or tint`},
		{"bad option", "", "", []service.LogOption{service.WithLogFormat("yaml")},
			`service: WithLogFormat "yaml": want json, text or tint`},
		{"bad option beats good env", "", "json", []service.LogOption{service.WithLogFormat("yaml")},
			`service: WithLogFormat "yaml": want json, text or tint`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearLogEnv(t)
			t.Setenv("LOG_LEVEL", tc.level)
			t.Setenv("LOG_FORMAT", tc.format)
			logger, err := service.NewLogger(append([]service.LogOption{service.WithLogOutput(&bytes.Buffer{})}, tc.opts...)...)
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Errorf("NewLogger error = %v, want one starting with %q", err, tc.wantErr)
			}
			if logger != nil {
				t.Errorf("NewLogger returned a logger with the error")
			}
		})
	}
}

// messages decodes JSON log lines and returns their msg values.
func messages(t *testing.T, buf *bytes.Buffer) []string {
	t.Helper()
	var msgs []string
	dec := json.NewDecoder(buf)
	for dec.More() {
		var line struct{ Msg string }
		if err := dec.Decode(&line); err != nil {
			t.Fatalf("decoding a log line: %v", err)
		}
		msgs = append(msgs, line.Msg)
	}
	return msgs
}
