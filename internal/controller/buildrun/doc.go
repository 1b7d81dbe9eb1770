// Package buildrun runs build runs: each pending run of an active project
// is built by the builder (BuildKit) with its output secret, its literal
// and config map build arguments and its secret ones as build secrets,
// within its timeout, and ends succeeded with the pushed image's digest or
// failed with Code Engine's reason and a message. A run's progress is kept
// in memory, for its logs. A run that was running when the server stopped
// runs again (a build is idempotent: it pushes the same image).
package buildrun
