package service_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/pier-go/pier/service"
)

// A service usually calls NewLogger with no options: JSON on stderr (tint on a
// terminal), with LOG_LEVEL and LOG_FORMAT honoured. Here the options fix the
// output, format and level, and the JSON lines are decoded to leave out their
// time, which changes from run to run.
func ExampleNewLogger() {
	var buf bytes.Buffer
	logger, err := service.NewLogger(
		service.WithLogOutput(&buf),
		service.WithLogFormat("json"),
		service.WithLogLevel(slog.LevelInfo),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	logger.Debug("not logged at info")
	logger.Info("listening", "addr", ":8080")
	logger.With("service", "users").Warn("registry unreachable", "retry_in", "2s")

	dec := json.NewDecoder(&buf)
	for dec.More() {
		var line map[string]any
		if err := dec.Decode(&line); err != nil {
			fmt.Println(err)
			return
		}
		delete(line, "time")
		out, _ := json.Marshal(line) // map keys in sorted order
		fmt.Println(string(out))
	}
	// Output:
	// {"addr":":8080","level":"INFO","msg":"listening"}
	// {"level":"WARN","msg":"registry unreachable","retry_in":"2s","service":"users"}
}
