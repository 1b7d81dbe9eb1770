// Package router is the data path of apps: it routes each request by its
// Host to a ready instance of the app's serving revision (the one with the
// fewest requests in flight), caps each instance at scale_concurrency,
// queues the excess (bounded; 503 when full), holds requests while a
// revision scales from zero and tells the autoscaler at once (the
// activator), ends requests that outlive scale_request_timeout with 504,
// and reports each revision's average concurrency.
//
// The common request (HTTP/1.1, no body, a response of known length that
// fits 16 KiB) is served by io_uring loops, one per core less one, which
// make fewer system calls per request than nginx (loop.go); any other
// request is served by the router's own HTTP/1.1 core, a goroutine per
// connection (core.go), which a loop hands the connection to, and which
// serves everything where io_uring is refused. HTTP/1.1 requests go to
// instances over kept-alive connections; upgrades (WebSockets) and h2c
// revisions go through httputil.ReverseProxy.
//
// The router never writes the store: the app controller publishes routes
// and ready instances to it.
package router
