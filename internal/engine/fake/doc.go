// Package fake is an engine.Engine held in memory, for the unit tests of
// the controllers: no image is pulled and no process runs. Images are
// registered with the credentials they need (AddImage); an instance's
// command is read from a small vocabulary — "true", "false", "sleep S",
// "sh -c 'exit N'" — and any other command runs until it is stopped or a
// test ends it (Exit). It passes the image-free part of enginetest.
package fake
