// Package function runs functions: it keeps pools of pre-warmed runtime
// instances (started, listening, holding no code) per project, runtime and
// size, so that a cold invocation only gives code to a running process.
// A pool instance is handed out once: after it has run a function's code
// it belongs to that function until it is removed, and it is never handed
// to another function or project.
package function
