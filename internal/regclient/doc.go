// Package regclient reaches OCI registries on a user's behalf as coligo
// does everywhere: references completed as Code Engine completes them,
// credentials given only to the registry they are for, connections only
// through netguard (never inward, but to the registries the operator
// allowed), and errors mapped to the reasons users see.
package regclient
