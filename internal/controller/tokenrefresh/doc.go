// Package tokenrefresh renews the compute resource tokens of running
// instances: every sixth of a token's life, each instance labelled with
// computetoken.Label gets a fresh token of its subject in its token file,
// replaced in place, so that the file always holds a token with most of
// its life ahead.
package tokenrefresh
