package tracing

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Start sends traces to the OTLP/HTTP collector at endpoint (its base URL,
// e.g. http://127.0.0.1:4318; spans go to <endpoint>/v1/traces), as service
// "coligo" of the given version, and takes traceparent headers from
// callers. stop flushes what is buffered and ends it.
func Start(ctx context.Context, endpoint, version string) (stop func(context.Context) error, err error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--otlp-endpoint must be an http(s) URL of an OTLP/HTTP collector, got %q", endpoint)
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u.JoinPath("v1", "traces").String())}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("OTLP exporter: %w", err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", "coligo"), attribute.String("service.version", version))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return tp.Shutdown, nil
}

// Handler traces the requests h serves as spans of component ("api",
// "router"): named by the route pattern that served them where h routes
// with a ServeMux ("GET /v2/projects/{project}/apps"), else by component
// and method.
func Handler(h http.Handler, component string) http.Handler {
	return otelhttp.NewHandler(h, component, otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
		if r.Pattern != "" {
			return r.Pattern
		}
		return component + " " + r.Method
	}))
}
