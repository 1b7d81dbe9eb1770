// Package project owns the project controller: it moves new projects to
// active, reaps soft-deleted projects whose retention has ended, and carries
// out hard deletes (crypto-shred: the DEK first, then every record, then the
// project, then compaction), resuming any of them after a crash.
package project
