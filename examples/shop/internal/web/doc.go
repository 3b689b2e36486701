// Package web holds the few HTTP helpers the shop's services share: problem
// answers and bearer-token forwarding.
package web
