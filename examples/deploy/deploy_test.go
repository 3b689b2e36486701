package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"

	"github.com/pier-go/pier/examples/shop"
	"github.com/pier-go/pier/gateway"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The service commands every deployment runs, and the stop bound of a
// Service: drain + shutdown timeout + the stop timeout (5 s).
const (
	stopTimeout = 5 * time.Second
	defaultStop = 25 * time.Second
)

var shopServices = []string{shop.Users, shop.Products, shop.Payments, shop.Orders}

// imageCommands reads the Dockerfile and returns the commands it builds into
// the image, checking its shape on the way.
func imageCommands(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var (
		froms    []string
		user     string
		cmds     []string
		cgoOff   bool
		building bool
	)
	s := bufio.NewScanner(bytes.NewReader(data))
	pkg := regexp.MustCompile(`\./examples/cmd/([a-z]+)`)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			building = false
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			froms = append(froms, fields[1])
			building = false
		case "USER":
			user = fields[1]
		case "ENV":
			cgoOff = cgoOff || strings.Contains(line, "CGO_ENABLED=0")
		case "RUN":
			building = strings.Contains(line, "go build")
		}
		if strings.Contains(line, "go build") {
			building = true
		}
		if building {
			for _, m := range pkg.FindAllStringSubmatch(line, -1) {
				cmds = append(cmds, m[1])
			}
			if !strings.HasSuffix(line, `\`) {
				building = false
			}
		}
	}
	if len(froms) < 2 || !strings.HasPrefix(froms[0], "golang:1.26") {
		t.Errorf("stages %v: want a golang:1.26 builder and a final stage", froms)
	}
	if final := froms[len(froms)-1]; final != "scratch" && !strings.HasPrefix(final, "gcr.io/distroless/static") {
		t.Errorf("final stage %s: want scratch or distroless/static", final)
	}
	if user == "" || user == "root" || user == "0" || strings.HasPrefix(user, "0:") {
		t.Errorf("USER %q: want a non-root user", user)
	}
	if !cgoOff {
		t.Error("the build does not set CGO_ENABLED=0")
	}
	return cmds
}

// TestDockerfileBuildsEveryServiceCommand checks that the image holds one
// binary per service command, each a command of this module.
func TestDockerfileBuildsEveryServiceCommand(t *testing.T) {
	cmds := imageCommands(t)
	want := append(slices.Clone(shopServices), shop.Gateway)
	if got := slices.Sorted(slices.Values(cmds)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("the image builds %v, want %v", got, want)
	}
	for _, c := range cmds {
		if _, err := os.Stat(filepath.Join("..", "cmd", c, "main.go")); err != nil {
			t.Errorf("the Dockerfile builds ./examples/cmd/%s: %v", c, err)
		}
	}
}

// TestRoutesFileIsTheShopsRoutes keeps routes.yaml, which Compose and the
// ConfigMap give the gateway, equal to the routes the gateway command uses
// without one.
func TestRoutesFileIsTheShopsRoutes(t *testing.T) {
	data, err := os.ReadFile("routes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	routes, err := gateway.LoadRoutes("routes.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if want := shop.Routes(1, 10); !reflect.DeepEqual(routes, want) {
		t.Errorf("routes.yaml:\n%+v\nshop.Routes:\n%+v", routes, want)
	}
}

type compose struct {
	Services map[string]struct {
		Image       string
		Build       any
		Entrypoint  []string
		Environment map[string]string
		Volumes     []string
		Healthcheck struct {
			Test []string
		}
		StopGracePeriod string `yaml:"stop_grace_period"`
		DependsOn       map[string]struct {
			Condition string
		} `yaml:"depends_on"`
	}
	Volumes map[string]any
}

// TestComposeFile parses docker-compose.yml (anchors and merge keys
// resolved as Compose resolves them) and checks the services it runs.
func TestComposeFile(t *testing.T) {
	data, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	for _, infra := range []string{"consul", "postgres", "jaeger", "prometheus"} {
		if _, ok := c.Services[infra]; !ok {
			t.Errorf("no %s service", infra)
		}
	}
	image := imageCommands(t)
	instances := map[string]int{}
	for name, s := range c.Services {
		if s.Image != "pier-shop:latest" {
			continue
		}
		if len(s.Entrypoint) != 1 {
			t.Errorf("%s: entrypoint %v, want one binary", name, s.Entrypoint)
			continue
		}
		bin := s.Entrypoint[0]
		cmd := strings.TrimPrefix(bin, "/usr/local/bin/")
		if !slices.Contains(image, cmd) {
			t.Errorf("%s runs %s, which the image does not hold", name, bin)
		}
		instances[cmd]++
		if got := s.Healthcheck.Test; !slices.Equal(got, []string{"CMD", bin, "-probe"}) {
			t.Errorf("%s: healthcheck %v, want [CMD %s -probe]", name, got, bin)
		}
		grace, err := time.ParseDuration(s.StopGracePeriod)
		if err != nil || grace <= defaultStop {
			t.Errorf("%s: stop_grace_period %q, want more than %v", name, s.StopGracePeriod, defaultStop)
		}
		env := s.Environment
		if env["PIER_REGISTRY"] != "consul" || env["CONSUL_HTTP_ADDR"] != "consul:8500" {
			t.Errorf("%s: registry %q at %q, want consul at consul:8500", name, env["PIER_REGISTRY"], env["CONSUL_HTTP_ADDR"])
		}
		if env["PIER_ADVERTISE"] != name+":8080" {
			t.Errorf("%s: PIER_ADVERTISE %q, want %s:8080, its name on the Compose network", name, env["PIER_ADVERTISE"], name)
		}
		if !strings.HasPrefix(env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"], "http://jaeger:4318/") {
			t.Errorf("%s: traces go to %q, want Jaeger's OTLP endpoint", name, env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"])
		}
		if (cmd == shop.Users || cmd == shop.Orders) != (env["PIER_ORDERS_SECRET"] != "") {
			t.Errorf("%s: PIER_ORDERS_SECRET %q: want it for users and orders only", name, env["PIER_ORDERS_SECRET"])
		}
		if cmd != shop.Gateway {
			if want := "@postgres:5432/" + cmd + "?"; !strings.Contains(env["DATABASE_URL"], want) {
				t.Errorf("%s: DATABASE_URL %q, want its own database (%s)", name, env["DATABASE_URL"], want)
			}
			for _, dep := range []string{"consul", "postgres"} {
				if s.DependsOn[dep].Condition != "service_healthy" {
					t.Errorf("%s: does not wait for %s to be healthy", name, dep)
				}
			}
		}
		if cmd == shop.Users && env["PIER_SIGNING_KEY"] == "" || cmd == shop.Users && !slices.ContainsFunc(s.Volumes, func(v string) bool {
			return strings.HasPrefix(v, "keys:") && strings.HasPrefix(env["PIER_SIGNING_KEY"], strings.Split(v, ":")[1]+"/")
		}) {
			t.Errorf("%s: the signing key %q is not on the shared volume keys", name, env["PIER_SIGNING_KEY"])
		}
		if cmd == shop.Gateway {
			routes := env["PIER_ROUTES"]
			if !slices.Contains(s.Volumes, "./routes.yaml:"+routes+":ro") {
				t.Errorf("gateway: PIER_ROUTES %q is not routes.yaml mounted read-only (volumes %v)", routes, s.Volumes)
			}
		}
	}
	for _, svc := range shopServices {
		if instances[svc] != 2 {
			t.Errorf("%d instances of %s, want 2", instances[svc], svc)
		}
	}
	if instances[shop.Gateway] != 1 {
		t.Errorf("%d gateways, want 1", instances[shop.Gateway])
	}
	for _, v := range []string{"keys", "postgres"} {
		if _, ok := c.Volumes[v]; !ok {
			t.Errorf("no volume %s", v)
		}
	}
	if _, err := os.Stat(filepath.Join("postgres", "init.sql")); err != nil {
		t.Error(err)
	}
}

// TestPrometheusScrapesEveryService checks that prometheus.yml finds every
// service's instances in Consul.
func TestPrometheusScrapesEveryService(t *testing.T) {
	data, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		ScrapeConfigs []struct {
			MetricsPath   string `yaml:"metrics_path"`
			ConsulSDConfs []struct {
				Server   string
				Services []string
			} `yaml:"consul_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	var scraped []string
	for _, sc := range p.ScrapeConfigs {
		if sc.MetricsPath != "/metrics" {
			t.Errorf("metrics_path %q, want /metrics", sc.MetricsPath)
		}
		for _, sd := range sc.ConsulSDConfs {
			if sd.Server != "consul:8500" {
				t.Errorf("consul_sd server %q", sd.Server)
			}
			scraped = append(scraped, sd.Services...)
		}
	}
	for _, svc := range append(slices.Clone(shopServices), shop.Gateway) {
		if !slices.Contains(scraped, svc) {
			t.Errorf("Prometheus does not scrape %s", svc)
		}
	}
}

// object is a Kubernetes object as far as the tests read it.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string
	Metadata   struct {
		Name      string
		Namespace string
		Labels    map[string]string
	}
	Spec       yaml.Node
	Data       map[string]string
	StringData map[string]string `yaml:"stringData"`
	file       string
}

type probe struct {
	HTTPGet *struct {
		Path string
		Port any
	} `yaml:"httpGet"`
	Exec *struct{ Command []string }
}

type container struct {
	Name    string
	Image   string
	Command []string
	Ports   []struct {
		Name          string
		ContainerPort int `yaml:"containerPort"`
	}
	Env []struct {
		Name      string
		Value     string
		ValueFrom *struct {
			SecretKeyRef *struct{ Name, Key string } `yaml:"secretKeyRef"`
			FieldRef     *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	}
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	VolumeMounts   []struct {
		Name      string
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
	SecurityContext struct {
		ReadOnlyRootFilesystem bool `yaml:"readOnlyRootFilesystem"`
	} `yaml:"securityContext"`
}

type deploymentSpec struct {
	Replicas int
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	Template struct {
		Metadata struct{ Labels map[string]string }
		Spec     struct {
			TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
			SecurityContext               struct {
				RunAsNonRoot bool `yaml:"runAsNonRoot"`
			} `yaml:"securityContext"`
			Containers []container
			Volumes    []struct {
				Name   string
				Secret *struct {
					SecretName string `yaml:"secretName"`
					Items      []struct{ Key, Path string }
				}
				ConfigMap *struct{ Name string } `yaml:"configMap"`
			}
		}
	}
}

type serviceSpec struct {
	ClusterIP string            `yaml:"clusterIP"`
	Selector  map[string]string `yaml:"selector"`
	Ports     []struct {
		Name       string
		Port       int
		TargetPort any `yaml:"targetPort"`
	}
}

// manifests parses every document of every file in k8s/ and checks the
// fields every object needs.
func manifests(t *testing.T) []object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var objs []object
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(false)
		for i := 0; ; i++ {
			var o object
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: document %d: %v", f, i+1, err)
			}
			o.file = fmt.Sprintf("%s#%d", f, i+1)
			if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
				t.Errorf("%s: missing apiVersion, kind or metadata.name", o.file)
			}
			if o.Kind != "Namespace" && o.Metadata.Namespace != "shop" {
				t.Errorf("%s %s: namespace %q, want shop", o.Kind, o.Metadata.Name, o.Metadata.Namespace)
			}
			objs = append(objs, o)
		}
	}
	return objs
}

func decodeSpec[T any](t *testing.T, o object) T {
	t.Helper()
	var v T
	if err := o.Spec.Decode(&v); err != nil {
		t.Fatalf("%s: spec: %v", o.file, err)
	}
	return v
}

// TestKubernetesManifests checks the manifests as kubectl would not without a
// cluster: probes on the health endpoints, a grace period longer than the
// stop bound, headless Services for DNS discovery, and every reference to a
// ConfigMap, Secret or binary resolving.
func TestKubernetesManifests(t *testing.T) {
	objs := manifests(t)
	image := imageCommands(t)
	byKind := func(kind, name string) *object {
		for i := range objs {
			if objs[i].Kind == kind && objs[i].Metadata.Name == name {
				return &objs[i]
			}
		}
		return nil
	}

	deployments := 0
	for _, o := range objs {
		if o.Kind != "Deployment" {
			continue
		}
		d := decodeSpec[deploymentSpec](t, o)
		name := o.Metadata.Name
		for k, v := range d.Selector.MatchLabels {
			if d.Template.Metadata.Labels[k] != v {
				t.Errorf("%s: the selector %s=%s does not match the pod template", name, k, v)
			}
		}
		c := d.Template.Spec.Containers
		if len(c) != 1 || c[0].Image != "pier-shop:latest" {
			continue // PostgreSQL
		}
		deployments++
		ct := c[0]
		if len(ct.Command) != 1 || !slices.Contains(image, strings.TrimPrefix(ct.Command[0], "/usr/local/bin/")) || !strings.HasPrefix(ct.Command[0], "/usr/local/bin/") {
			t.Errorf("%s: command %v is not a binary of the image (%v)", name, ct.Command, image)
		}
		if want := "/usr/local/bin/" + name; len(ct.Command) == 1 && ct.Command[0] != want {
			t.Errorf("Deployment %s runs %s", name, ct.Command[0])
		}
		if d.Replicas < 2 {
			t.Errorf("%s: %d replicas, want at least 2", name, d.Replicas)
		}
		if ct.ReadinessProbe == nil || ct.ReadinessProbe.HTTPGet == nil || ct.ReadinessProbe.HTTPGet.Path != "/health/ready" {
			t.Errorf("%s: readiness probe is not GET /health/ready", name)
		}
		if ct.LivenessProbe == nil || ct.LivenessProbe.HTTPGet == nil || ct.LivenessProbe.HTTPGet.Path != "/health/live" {
			t.Errorf("%s: liveness probe is not GET /health/live", name)
		}
		for _, p := range []*probe{ct.ReadinessProbe, ct.LivenessProbe} {
			if p != nil && p.HTTPGet != nil && !slices.ContainsFunc(ct.Ports, func(port struct {
				Name          string
				ContainerPort int `yaml:"containerPort"`
			}) bool {
				return p.HTTPGet.Port == port.Name || p.HTTPGet.Port == port.ContainerPort
			}) {
				t.Errorf("%s: a probe's port %v is not a container port", name, p.HTTPGet.Port)
			}
		}
		if !d.Template.Spec.SecurityContext.RunAsNonRoot || !ct.SecurityContext.ReadOnlyRootFilesystem {
			t.Errorf("%s: want runAsNonRoot and a read-only root filesystem", name)
		}

		env := map[string]string{}
		for _, e := range ct.Env {
			env[e.Name] = e.Value
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				ref := e.ValueFrom.SecretKeyRef
				s := byKind("Secret", ref.Name)
				if s == nil {
					t.Errorf("%s: %s from Secret %s, which no manifest defines", name, e.Name, ref.Name)
				} else if _, ok := s.StringData[ref.Key]; !ok {
					t.Errorf("%s: %s from Secret %s key %s, which it does not hold", name, e.Name, ref.Name, ref.Key)
				}
			}
		}
		drain, shutdown := 5*time.Second, 15*time.Second
		var err error
		if v, ok := env["PIER_DRAIN"]; ok {
			drain, err = time.ParseDuration(v)
		}
		if v, ok := env["PIER_SHUTDOWN_TIMEOUT"]; ok && err == nil {
			shutdown, err = time.ParseDuration(v)
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		bound := max(drain, time.Second) + shutdown + stopTimeout
		grace := 30 * time.Second // Kubernetes' default
		if g := d.Template.Spec.TerminationGracePeriodSeconds; g != nil {
			grace = time.Duration(*g) * time.Second
		}
		if grace <= bound || grace <= defaultStop {
			t.Errorf("%s: terminationGracePeriodSeconds %v, want more than the stop bound %v (and than %v)", name, grace, bound, defaultStop)
		}
		_, hasSecret := env["PIER_ORDERS_SECRET"]
		if (name == shop.Users || name == shop.Orders) != hasSecret {
			t.Errorf("%s: PIER_ORDERS_SECRET set: %v, want it for users and orders only", name, hasSecret)
		}
		if env["PIER_REGISTRY"] != "dns" {
			t.Errorf("%s: PIER_REGISTRY %q, want dns", name, env["PIER_REGISTRY"])
		}
		if name == shop.Users {
			key := env["PIER_SIGNING_KEY"]
			found := false
			for _, v := range d.Template.Spec.Volumes {
				if v.Secret == nil || byKind("Secret", v.Secret.SecretName) == nil {
					continue
				}
				for _, m := range ct.VolumeMounts {
					for _, it := range v.Secret.Items {
						if m.Name == v.Name && key == m.MountPath+"/"+it.Path {
							_, found = byKind("Secret", v.Secret.SecretName).StringData[it.Key]
						}
					}
				}
			}
			if !found {
				t.Errorf("users: PIER_SIGNING_KEY %q is not a key of a Secret mounted in the pod", key)
			}
		}
		if name == shop.Gateway {
			routes := env["PIER_ROUTES"]
			found := false
			for _, v := range d.Template.Spec.Volumes {
				if v.ConfigMap == nil {
					continue
				}
				cm := byKind("ConfigMap", v.ConfigMap.Name)
				for _, m := range ct.VolumeMounts {
					if cm != nil && m.Name == v.Name && strings.HasPrefix(routes, m.MountPath+"/") {
						data, ok := cm.Data[strings.TrimPrefix(routes, m.MountPath+"/")]
						if !ok {
							continue
						}
						found = true
						got, err := gateway.LoadRoutes(routes, []byte(data))
						if err != nil || !reflect.DeepEqual(got, shop.Routes(1, 10)) {
							t.Errorf("gateway: the ConfigMap's routes are not the shop's: %v", err)
						}
					}
				}
			}
			if !found {
				t.Errorf("gateway: PIER_ROUTES %q is not a key of a ConfigMap mounted in the pod", routes)
			}
		}
	}
	if deployments != 5 {
		t.Errorf("%d Deployments of the shop's image, want 5", deployments)
	}

	// A headless Service per service, its port named http for the SRV
	// records the DNS resolver asks for.
	for _, svc := range shopServices {
		o := byKind("Service", svc)
		if o == nil {
			t.Errorf("no Service %s", svc)
			continue
		}
		s := decodeSpec[serviceSpec](t, *o)
		if s.ClusterIP != "None" {
			t.Errorf("Service %s: clusterIP %q, want None (headless)", svc, s.ClusterIP)
		}
		if s.Selector["app.kubernetes.io/name"] != svc {
			t.Errorf("Service %s selects %v", svc, s.Selector)
		}
		if len(s.Ports) != 1 || s.Ports[0].Name != "http" || s.Ports[0].Port != 8080 {
			t.Errorf("Service %s: ports %+v, want one named http on 8080", svc, s.Ports)
		}
	}
	if byKind("Service", shop.Gateway) == nil {
		t.Error("no Service for the gateway")
	}
}
