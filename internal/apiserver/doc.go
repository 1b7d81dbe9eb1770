// Package apiserver owns the v2 HTTP API: routing, authentication and
// authorization of every call, request decoding and validation, pagination,
// and the one place where errors become status codes and JSON bodies.
//
// Handlers write desired state to the store and return; they never call an
// engine. Controllers converge what they wrote.
package apiserver
