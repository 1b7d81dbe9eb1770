// Package storetest opens a real store for other packages' tests: a bbolt
// file in the test's temporary dir, sealed under a local root key, closed
// when the test ends.
package storetest
