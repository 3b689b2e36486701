package service

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/lmittmann/tint"
	"golang.org/x/term"
)

// Log formats accepted by [WithLogFormat] and the LOG_FORMAT environment variable.
const (
	logFormatJSON = "json"
	logFormatText = "text"
	logFormatTint = "tint"
)

// tintTimeFormat is the time of day, to the millisecond, that tint prints.
const tintTimeFormat = "15:04:05.000"

// LogOption configures [NewLogger].
type LogOption func(*logConfig)

type logConfig struct {
	out    io.Writer
	level  slog.Leveler
	format string
}

// WithLogOutput sets where the logger writes. The default (and nil) is
// os.Stderr. The handler serialises its writes, so w need not be safe for
// concurrent use, unless other code writes to it too.
func WithLogOutput(w io.Writer) LogOption {
	return func(c *logConfig) { c.out = w }
}

// WithLogLevel sets the lowest level that is logged. It wins over the LOG_LEVEL
// environment variable. The default (and nil) is LOG_LEVEL when it is set and not
// empty, else slog.LevelInfo. Pass a *slog.LevelVar to change the level while the
// logger runs.
func WithLogLevel(l slog.Leveler) LogOption {
	return func(c *logConfig) { c.level = l }
}

// WithLogFormat sets the output format: "json" (slog.JSONHandler), "text"
// (slog.TextHandler) or "tint" (github.com/lmittmann/tint: short, aligned and, on
// a terminal, coloured lines for people), in any case. It wins over the LOG_FORMAT
// environment variable. The default (and "") is LOG_FORMAT when it is set and not
// empty, else "tint" when the output is a terminal and "json" otherwise. Any
// other value makes [NewLogger] fail.
func WithLogFormat(f string) LogOption {
	return func(c *logConfig) { c.format = f }
}

// NewLogger returns a structured logger configured by opts and, where an option
// is not given, by the environment:
//
//   - LOG_LEVEL: the lowest level logged, as slog.Level.UnmarshalText reads it:
//     debug, info, warn or error in any case, with an optional offset such as
//     "error+2" or "info-4". The default is info.
//   - LOG_FORMAT: json, text or tint (see [WithLogFormat]). The default is tint on
//     a terminal and json otherwise, which is what a container's log collector
//     wants.
//   - NO_COLOR: when set and not empty, tint writes no colour
//     (https://no-color.org). Colour is only ever written to a terminal.
//
// An explicit option always wins over its environment variable. An invalid
// value, from either, is an error that names its source and the value, as in
// `service: LOG_LEVEL "loud": ...`.
//
// NewLogger never changes slog's default logger; call slog.SetDefault in main if
// you want it to. It is safe for concurrent use, and so is the logger it returns.
func NewLogger(opts ...LogOption) (*slog.Logger, error) {
	var c logConfig
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	if c.out == nil {
		c.out = os.Stderr
	}

	level := c.level
	if level == nil {
		level = slog.LevelInfo
		if s := os.Getenv("LOG_LEVEL"); s != "" {
			var l slog.Level
			if err := l.UnmarshalText([]byte(s)); err != nil {
				return nil, fmt.Errorf("service: LOG_LEVEL %q: %w", s, err)
			}
			level = l
		}
	}

	terminal := isTerminal(c.out)
	format, source := c.format, "WithLogFormat"
	if format == "" {
		format, source = os.Getenv("LOG_FORMAT"), "LOG_FORMAT"
	}
	var h slog.Handler
	switch strings.ToLower(format) {
	case "":
		if terminal {
			h = newTintHandler(c.out, level, terminal)
		} else {
			h = slog.NewJSONHandler(c.out, &slog.HandlerOptions{Level: level})
		}
	case logFormatJSON:
		h = slog.NewJSONHandler(c.out, &slog.HandlerOptions{Level: level})
	case logFormatText:
		h = slog.NewTextHandler(c.out, &slog.HandlerOptions{Level: level})
	case logFormatTint:
		h = newTintHandler(c.out, level, terminal)
	default:
		return nil, fmt.Errorf("service: %s %q: want %s, %s or %s",
			source, format, logFormatJSON, logFormatText, logFormatTint)
	}
	return slog.New(h), nil
}

func newTintHandler(w io.Writer, level slog.Leveler, terminal bool) slog.Handler {
	return tint.NewTextHandler(w, &tint.Options{
		Level:      level,
		TimeFormat: tintTimeFormat,
		NoColor:    !terminal || os.Getenv("NO_COLOR") != "",
	})
}

// isTerminal reports whether w is an *os.File open on a terminal. It reads the
// descriptor through SyscallConn rather than Fd, which would switch the file to
// blocking mode.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var tty bool
	if err := rc.Control(func(fd uintptr) { tty = term.IsTerminal(int(fd)) }); err != nil {
		return false
	}
	return tty
}
