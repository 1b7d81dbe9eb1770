// Package computetoken makes and checks compute resource tokens: the
// workload identity of an app's, a job run's or a job's instances, which
// find theirs in a file (Code Engine's path, Path) and call the coligo API
// with it as a bearer token, as a writer of their own project.
//
// A token is its claims (project, subject, expiry) and their HMAC-SHA256
// under a key of the project's, kept sealed in the project's store like
// any of its data: nothing is stored per token, a token cannot outlive its
// expiry, and a hard delete of the project (which shreds the key) ends
// them all.
package computetoken
