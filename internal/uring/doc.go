// Package uring is an io_uring ring for network I/O, as small as a data
// path needs: receives, sends, accepts, reads, timeouts linked to an
// operation, and cancellation, submitted to a ring and completed in one
// system call (io_uring_enter) for as many as are ready, where a read or
// write through Go's poller is one system call each, and a wait for
// readiness more. On this project's machines system calls are most of a
// proxy's cost (BENCHMARKS.md, issue 14), so a loop on a ring makes fewer
// of them than nginx does for the same work.
//
// A Ring is used from one goroutine locked to its OS thread
// (runtime.LockOSThread): it is set up with IORING_SETUP_SINGLE_ISSUER and
// IORING_SETUP_DEFER_TASKRUN, so the kernel completes its operations only
// when that thread waits in Submit, and never interrupts it to do so.
//
// The buffers given to an operation belong to the kernel until its
// completion: the caller keeps them referenced and unchanged until then.
// SendNow posts a completion only when it fails, and never stays under
// way: its buffer is free once the Submit that submitted it returns, which
// lets a loop send a response and wait for the next request in one system
// call.
// Go's heap does not move, so a referenced slice stays where the kernel
// writes it.
//
// x/sys/unix has io_uring's system call numbers only; the kernel's
// structures are declared here (include/uapi/linux/io_uring.h).
package uring
