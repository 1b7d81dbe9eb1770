// Package api holds the v2 wire types, with IBM Cloud Code Engine's field
// names, and a Go client for them. It imports only the standard library, so
// that programs can use it without pulling in the server.
package api
