// Package bundle reads code bundles: the files of a function that come
// from an image in a registry (Code Engine's code_reference of a bundle)
// rather than inline. A bundle's image holds only files (FROM scratch);
// its filesystem, layers applied, is the bundle, rooted at /. Fetch pulls
// one with the project's registry secret and holds its files in memory;
// Pack makes one from a local directory, honouring .ceignore, for the CLI
// to push.
package bundle
