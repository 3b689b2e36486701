// Package deploy holds the shop's deployment files, not Go code: the
// Dockerfile of the one image every service runs from, docker-compose.yml
// (Consul, PostgreSQL, Jaeger, Prometheus and two instances of each service),
// prometheus.yml, the gateway's routes.yaml and the Kubernetes manifests in
// k8s/. Its tests parse them and check what a deployment relies on; see
// docs/deploy.md.
package deploy
