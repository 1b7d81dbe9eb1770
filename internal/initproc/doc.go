// Package initproc is the init coligo's local engine puts at PID 1 of every
// instance (cmd/coligo-init, a small static binary bind-mounted read-only
// into the container). It owns three things that the OCI spec must not or
// cannot do:
//
//   - the environment: values of the instance's variables, secrets among
//     them, are read from a file on the instance's own tmpfs, so that no
//     spec, bundle or containerd metadata file holds them (only the image's
//     own variables are in the spec);
//   - reporting whether the command could be executed, through a FIFO the
//     engine reads, so that a command missing from the image is an error of
//     the start, not an exit code;
//   - signals and zombies, as docker run --init does: the command does not
//     run as PID 1, so SIGTERM ends a program that installs no handler
//     (busybox httpd, most shell scripts), signals are forwarded to it, and
//     orphans are reaped.
package initproc
