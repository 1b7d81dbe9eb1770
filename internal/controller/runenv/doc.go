// Package runenv resolves what an instance of a job run or an app revision
// is started with from the project's records: pull credentials from a
// registry secret, environment variables from literals, secrets and config
// maps with Code Engine's precedence, and the files of mounted secrets and
// config maps.
package runenv
