// Package quota decides how much a project may still start: Code Engine's
// project quotas (active instances, CPU, memory, ephemeral storage), held in
// a Ledger that the app and job run controllers share, and the fair share
// of a server-wide cap among the projects waiting for it (Share). Both
// decisions are pure functions of what is held and wanted; the Ledger only
// makes the quota's check and record one step.
package quota
