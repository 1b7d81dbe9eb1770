// Package runtime holds coligo's managed function runtimes: the catalogue
// of those the host can run (Discover, Catalogue: Code Engine's runtime
// ids, names and families, with default and deprecated decided from Code
// Engine's published lifecycle), and the runtime proxies built into each
// runtime's image (proxy.js, proxy.py), which take a function's code once
// and call its main(args) per Code Engine's request and response
// interfaces.
package runtime
