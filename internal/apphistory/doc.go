// Package apphistory keeps the last hour of each app's load — its ready
// instances and the requests per second it served — sampled from the
// server's own metrics (the router's per-revision request counters and the
// app controller's instance gauges), for the console's charts. It holds
// numbers only, in memory: a restart starts a new hour.
package apphistory
