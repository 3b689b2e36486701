module github.com/pier-go/pier

go 1.26.0

require (
	github.com/google/go-cmp v0.7.0
	github.com/lmittmann/tint v1.2.1
	go.uber.org/goleak v1.3.0
	golang.org/x/term v0.47.0
)

require golang.org/x/sys v0.49.0 // indirect
