package resilience

// chain returns a hook that runs prev, then fn: how [WithOnShed] adds hooks
// rather than replacing them. A nil fn adds nothing.
func chain[E any](prev, fn func(E)) func(E) {
	switch {
	case fn == nil:
		return prev
	case prev == nil:
		return fn
	}
	return func(e E) {
		prev(e)
		fn(e)
	}
}
