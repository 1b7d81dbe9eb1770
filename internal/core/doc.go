// Package core owns coligo's domain: the resources a user manages (projects,
// secrets, config maps, tokens, jobs, job runs, apps and their revisions,
// allowed outbound destinations), their fields, defaults and validation
// rules, the statuses and reasons of each, the project state machine, the
// audit event, and the error classes every layer matches with errors.Is.
//
// It imports nothing of coligo's own, so every other package may use it.
package core
