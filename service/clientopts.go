package service

import "github.com/pier-go/pier/discovery"

// clientTelemetry returns the options that give [Service.Client] the
// Service's tracer provider, meter provider and propagator, so that its spans
// continue the server's traces and its metrics are served with the Service's.
func (s *Service) clientTelemetry() []discovery.ClientOption {
	return []discovery.ClientOption{
		discovery.WithTracerProvider(s.tel.tracerProvider),
		discovery.WithMeterProvider(s.tel.meterProvider),
		discovery.WithPropagator(s.tel.propagator),
	}
}
