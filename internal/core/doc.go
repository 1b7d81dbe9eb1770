// Package core owns coligo's domain: the resources a user manages (projects,
// secrets, config maps, tokens), their validation rules, the project state
// machine and the error classes every layer matches with errors.Is.
//
// It imports nothing of coligo's own, so every other package may use it.
package core
