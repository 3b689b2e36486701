package orders

import (
	"context"
	"errors"
	"time"
)

// StaleAfter is the age past which a pending order is taken as abandoned:
// its placement died with its process, or could not undo itself because
// products or payments were down. It is longer than any placement lasts
// (the request timeout, 30 s by default, plus CompensationTimeout).
const StaleAfter = 2 * time.Minute

// sweepBatch bounds the orders one sweep handles.
const sweepBatch = 100

// Sweep finishes what placements left undone: first the undo steps they
// owe (a release or a refund that failed while products or payments were
// down), then every pending order created before now minus StaleAfter, whose
// placement died with its process: it is undone as a failed placement is (a
// refund by its reference, which voids it when no charge came, and a release
// of each item's reservation) and deleted. Its calls use the orders service's
// own token. What fails stays for the next sweep. Sweep returns how many steps
// and orders it finished; it is safe beside placements and other sweeps, since
// every step is idempotent.
func (o *Orders) Sweep(ctx context.Context, now time.Time) (int, error) {
	done := 0
	owed, err := o.store.Owed(ctx, sweepBatch)
	if err != nil {
		return 0, err
	}
	for _, st := range owed {
		s := &saga{o: o, order: &Order{ID: st.OrderID}}
		cctx, cancel := compCtx(ctx)
		ok := s.do(cctx, st)
		cancel()
		if !ok {
			continue
		}
		if err := o.store.Paid(ctx, st); err != nil {
			return done, err
		}
		done++
	}

	stale, err := o.store.Stale(ctx, now.Add(-StaleAfter), sweepBatch)
	if err != nil {
		return done, err
	}
	for i := range stale {
		x := &stale[i]
		s := &saga{o: o, order: x}
		for _, it := range x.Items {
			s.reserved = append(s.reserved, ReservationID(x.ID, it.ProductID))
		}
		s.refund(ctx)
		s.release(ctx)
		if s.settle(ctx) != nil {
			continue
		}
		if err := o.store.Delete(ctx, x.ID); err != nil {
			return done, err
		}
		o.log.InfoContext(ctx, "abandoned order undone", "order", x.ID, "created", x.CreatedAt)
		done++
	}
	return done, nil
}

// Sweeper returns the start and stop of a loop that runs Sweep every interval:
// give them to the orders Service with service.WithOnStart and
// service.WithOnStop, so that the loop runs while the Service does. stop
// waits for a sweep in progress, within its context.
func (o *Orders) Sweeper(interval time.Duration) (start, stop func(context.Context) error) {
	var (
		cancel context.CancelFunc = func() {}
		done                      = make(chan struct{})
	)
	start = func(ctx context.Context) error {
		if interval <= 0 {
			close(done)
			return errors.New("orders: sweep interval must be positive")
		}
		ctx, cancel = context.WithCancel(context.WithoutCancel(ctx))
		go func() {
			defer close(done)
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case now := <-t.C:
					if _, err := o.Sweep(ctx, now); err != nil && ctx.Err() == nil {
						o.log.ErrorContext(ctx, "sweep", "error", err)
					}
				}
			}
		}()
		return nil
	}
	stop = func(ctx context.Context) error {
		cancel()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return start, stop
}
