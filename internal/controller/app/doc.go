// Package app converges apps: it creates a revision for each generation of
// an app, pins its image, starts and stops the revision's instances as the
// autoscaler decides, probes them, publishes routes and ready instances to
// the router, moves traffic to the newest ready revision while the old one
// drains, and keeps the serving revision plus one inactive one.
//
// Scale decisions live in memory: after a restart the controller adopts the
// instances the engine still runs, and the autoscaler holds their number
// until it has observed a full stable window.
package app
