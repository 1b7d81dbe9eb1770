// Package router is the data path of apps: it routes each request by its
// Host to a ready instance of the app's serving revision (the one with the
// fewest requests in flight), caps each instance at scale_concurrency,
// queues the excess (bounded; 503 when full), holds requests while a
// revision scales from zero and tells the autoscaler at once (the
// activator), ends requests that outlive scale_request_timeout with 504,
// and reports each revision's average concurrency.
//
// HTTP/1.1 requests go to instances over kept-alive connections the
// request's own goroutine writes and reads (upstream.go); upgrades
// (WebSockets) and h2c revisions go through httputil.ReverseProxy.
//
// The router never writes the store: the app controller publishes routes
// and ready instances to it.
package router
