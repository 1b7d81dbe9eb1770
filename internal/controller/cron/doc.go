// Package cron delivers the events of cron subscriptions, once per tick:
// an HTTP POST of the event (CloudEvents, binary mode) through the router
// to an app or a function, or a new job run of a job with the event in its
// environment.
//
// Each tick's delivery is decided and written (sealed, in the project's
// store) before it is made, with the event's id; a server that stops in
// between delivers the decided event, with that id, when it starts again.
// Ticks missed while the server was down are not replayed: the last of
// them is delivered (late) and the others are recorded as skipped. Ticks
// of a project while it is soft-deleted are not delivered at all.
package cron
