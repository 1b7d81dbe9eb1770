// Package tracing sends OpenTelemetry traces of the API's and the router's
// requests to an OTLP/HTTP collector, when the operator names one
// (--otlp-endpoint). Without one nothing is traced and nothing is paid.
package tracing
